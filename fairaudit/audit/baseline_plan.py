"""The baseline arm: the spec's downstream model on the data as they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from fairaudit.audit.arm import Arm, ArmPlan
from fairaudit.audit.data_stage import probe_representation, representation_name
from fairaudit.audit.metrics_stage import needs_features
from fairaudit.base import BaseModel
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
        repr_test, repr_train, repr_name = self._representation(state, model)
        return [Arm(
            ArmResult(name=self.name, kind="baseline", plugin=self.component.name, params=dict(self.component.params)),
            scores_test=scores_test, scores_val=scores_val,
            repr_test=repr_test, repr_train=repr_train, repr_name=repr_name,
            y_train=s.train.y, sensitive_train=s.train.sensitive, predict_fn=model.predict_proba)]

    def _representation(self, state: RunState, model: BaseModel) -> tuple[np.ndarray, np.ndarray, str]:
        """What the probes read: the model's own representation when it offers one (and a metric
        reads it), else the inputs (features, or pixels pooled to at most 32×32)."""
        s = state.splits
        if needs_features(state):
            own = state.log.timed(f"{self.name}.representation", lambda: (
                model.representation(s.test.inputs), model.representation(s.train.inputs)))
            if own[0] is not None and own[1] is not None:
                return own[0][0], own[1][0], own[0][1]
        return probe_representation(s.test), probe_representation(s.train), representation_name(s.test)
