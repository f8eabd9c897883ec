"""Arms of given scores: one per score column of a dataset that provides scores (``predictions``).

No model is created or trained: an arm is the column's scores on the test rows (and on the
validation rows, which only fix operating points).  The first arm is the reference every other
arm's paired change is measured from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from fairaudit.audit.arm import Arm, ArmPlan
from fairaudit.results import ArmResult
from fairaudit.spec.models import AuditSpec

if TYPE_CHECKING:
    from fairaudit.audit.state import RunState
    from fairaudit.data import AuditDataset
    from fairaudit.plugins import PluginSet

#: The reference arm of an audit that trains a model.
BASELINE = "baseline"


@dataclass(frozen=True)
class PredictionsPlan(ArmPlan):
    """The scores of one model, read with the data (``arm``: its name in the report)."""

    arm: str
    column: str
    kind: ClassVar = "predictions"
    family: ClassVar[str] = "datasets"
    needs_torch: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return self.arm

    def config(self) -> dict[str, Any]:
        return {**super().config(), "arm": self.arm, "column": self.column}

    def run(self, state: RunState) -> list[Arm]:
        s = state.splits
        state.say_arm(self.name, f"scores from column {self.column!r} (no model is trained)")
        assert s.test.scores is not None
        scores_val = s.val.scores[self.arm] if s.val is not None and s.val.scores is not None else None
        params = {"score": self.column, "score_kind": state.dataset.meta.get("score_kind", "probability")}
        return [Arm(ArmResult(name=self.name, kind="predictions", plugin=self.component.name, params=params),
                    scores_test=s.test.scores[self.arm], scores_val=scores_val)]


def predictions_plans(spec: AuditSpec, dataset: AuditDataset) -> list[ArmPlan]:
    """One plan per score column of ``dataset``, in the order the spec gave them."""
    columns: dict[str, str] = dataset.meta.get("score_columns") or {name: name for name in dataset.scores or {}}
    return [PredictionsPlan(i, spec.dataset, arm, columns.get(arm, arm)) for i, arm in enumerate(dataset.scores or {})]


def provides_scores(spec: AuditSpec, plugins: PluginSet) -> bool:
    """Whether the spec's dataset plugin gives a model's scores (so nothing is trained)."""
    try:
        cls = plugins.registry("datasets").get(spec.dataset.name)
    except Exception:  # reported when the spec was checked
        return False
    return bool(getattr(cls, "provides_scores", False))


def reference_arm(dataset: AuditDataset) -> str:
    """The arm every other arm is compared with: the first score column, else the baseline."""
    return next(iter(dataset.scores), BASELINE) if dataset.scores else BASELINE
