"""The baseline arm: the spec's downstream model on the data as they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from fairaudit.audit.arm import Arm, ArmPlan
from fairaudit.audit.data_stage import probe_representation
from fairaudit.results import ArmResult

if TYPE_CHECKING:
    from fairaudit.audit.state import RunState

BASELINE = "baseline"


@dataclass(frozen=True)
class BaselinePlan(ArmPlan):
    """Fit the spec's model on the training split; every mitigation is compared with it."""

    kind: ClassVar = "baseline"
    family: ClassVar[str] = "models"
    fatal: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return BASELINE

    def run(self, state: RunState) -> list[Arm]:
        s = state.splits
        model = state.new_model()
        state.say_arm(self.name, f"fitting {self.component.name!r}")
        val_inputs = s.val.inputs if s.val is not None else None
        scores_val, scores_test = state.log.timed(
            self.name, lambda: state.fit_predict(model, s.train.inputs, s.train.y, val_inputs, s.test.inputs))
        state.keep_baseline(model)
        return [Arm(
            ArmResult(name=self.name, kind="baseline", plugin=self.component.name, params=dict(self.component.params)),
            scores_test=scores_test, scores_val=scores_val,
            repr_test=probe_representation(s.test), repr_train=probe_representation(s.train),
            y_train=s.train.y, sensitive_train=s.train.sensitive, predict_fn=model.predict_proba)]
