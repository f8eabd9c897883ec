"""What a validated spec means for a run: its statistics settings and the settings recorded in
``result.json`` (built here once, never copied field by field)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fairaudit.base import StatsConfig
from fairaudit.spec.models import AuditSpec


def stats_config(spec: AuditSpec) -> StatsConfig:
    """The statistics every metric of the run shares: the spec's ``statistics`` section and its
    master ``seed`` (a field of one that the other lacks is a ``TypeError`` here, not a drift)."""
    return StatsConfig(**spec.statistics.model_dump(), seed=spec.seed)


def split_seed(spec: AuditSpec) -> int:
    """The seed of the train/validation/test split (``split.seed``, else the master seed)."""
    return spec.split.seed if spec.split.seed is not None else spec.seed


def result_settings(spec: AuditSpec, stats: StatsConfig, device: str, *, reference_arm: str = "baseline",
                    given_split: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``settings`` of ``result.json``: the statistics as run, and the audit's choices.

    An audit of given scores (``given_split``: how its rows were divided) has no model and no
    split of the spec; ``reference_arm`` is the arm every other one is compared with."""
    model = None if given_split is not None else {"name": spec.model.name, "params": dict(spec.model.params)}
    return {
        **dataclasses.asdict(stats),
        "attributes": list(spec.attributes),
        "intersections": [list(c) for c in spec.intersections],
        "threshold": spec.decision_threshold,
        "device": device,
        "model": model,
        "split": given_split if given_split is not None else spec.split.model_dump(),
        "reference_arm": reference_arm,
        "repeats": spec.repeats,
        "thresholds": {k: v.model_dump(exclude_none=True) for k, v in spec.thresholds.items()},
    }
