"""Arms and arm plans.

An *arm plan* is one entry of the audit: the baseline, a debiaser, a generator, or the given
scores of one model (:mod:`~fairaudit.audit.predictions_plan`).  Running it
(:meth:`ArmPlan.run`) trains what it needs and returns one or more :class:`Arm` (a generator
yields one arm per evaluation): the arm's result record plus what its metrics read.
"""

from __future__ import annotations

import abc
import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd

from fairaudit import atomic
from fairaudit.results import ArmResult, Block
from fairaudit.spec.models import Component

if TYPE_CHECKING:
    from fairaudit.audit.state import RunState

LOG = logging.getLogger("fairaudit")
Kind = Literal["baseline", "debiaser", "generator", "predictions"]


@dataclass
class Arm:
    """What an arm needs for its metrics: scores and (optionally) a representation."""

    result: ArmResult
    scores_test: np.ndarray | None = None
    scores_val: np.ndarray | None = None
    repr_test: np.ndarray | None = None
    repr_train: np.ndarray | None = None
    #: Words for the representation (``"input pixels pooled to 32×32"``, ``"model features (1024-d, ...)"``).
    repr_name: str | None = None
    y_train: np.ndarray | None = None
    sensitive_train: pd.DataFrame | None = None
    predict_fn: Callable[[np.ndarray], np.ndarray] | None = None
    counterfactuals: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class ArmPlan(abc.ABC):
    """One entry of the audit, at position ``index`` (its seed and its file name derive from it)."""

    index: int
    component: Component
    kind: ClassVar[Kind]
    #: A failure stops the audit (nothing can be compared without it) instead of being recorded.
    fatal: ClassVar[bool] = False
    #: The plugin family of ``component``.
    family: ClassVar[str]
    #: Running the plan may use torch (seeded before it runs); given scores never do.
    needs_torch: ClassVar[bool] = True

    @property
    def name(self) -> str:
        """The arm's name (a generator's further evaluations append theirs)."""
        return self.component.arm_name

    @abc.abstractmethod
    def run(self, state: RunState) -> list[Arm]:
        """Train and evaluate; the arms, in the spec's order."""

    def config(self) -> dict[str, Any]:
        """The arm's resolved configuration (for its fingerprint)."""
        # how many repeats the arm has, and which arm it is compared with, do not change what one
        # repeat computes
        component = self.component.model_dump(mode="json", exclude={"repeats", "compare_with"})
        return {"kind": self.kind, "index": self.index, "component": component}

    def failed(self, exc: BaseException) -> ArmResult:
        """The record of this arm when running it raised ``exc``."""
        LOG.error("arm %s failed: %s", self.name, exc)
        return ArmResult(name=self.name, kind=self.kind, plugin=self.component.name,
                         params=dict(self.component.params), status="failed",
                         error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))


def seed_arm(seed: int, index: int, *, with_torch: bool = True) -> None:
    """Seed the global generators for arm ``index``, so a resumed arm draws what it would have."""
    from fairaudit.stats.seeds import repeat_seed
    from fairaudit.training import seed_everything

    seed_everything(repeat_seed(seed, index, "", 0), with_torch=with_torch)


def json_safe(obj: Any) -> Any:
    """``obj`` as plain JSON data (numpy values converted)."""
    return json.loads(json.dumps(obj, default=atomic._json_default))


def plugin_blocks(state: RunState, raw: list[Any], arm: str) -> list[Block]:
    """An arm plugin's ``report_blocks()`` as typed blocks; unreadable ones become warnings."""
    from fairaudit.blocks import to_blocks

    blocks, problems = to_blocks([b if hasattr(b, "model_dump") else json_safe(b) for b in raw], f"arm {arm!r}")
    state.warnings.extend(problems)
    return blocks
