"""Each arm's change from the baseline, with paired-bootstrap intervals, for the results.

The runner keeps every arm's test scores (and saves them next to the arm's results, so that a
resumed audit can still pair an arm finished earlier); once all arms are done,
:func:`attach_paired_changes` fills ``ArmResult.versus_baseline``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from fairaudit import atomic
from fairaudit.builtin.metrics._common import attribute_sets_of
from fairaudit.builtin.metrics.group_metrics import GroupMetrics
from fairaudit.data import AuditDataset
from fairaudit.results import ArmResult, MetricResult
from fairaudit.spec.models import AuditSpec
from fairaudit.stats.bootstrap import make_rng
from fairaudit.stats.paired import paired_changes

LABELS = {
    "roc_auc": "Change in ROC AUC from the baseline",
    "worst_group_auc": "Change in worst-group ROC AUC from the baseline",
    "equal_opportunity_difference": "Change in the equal opportunity difference from the baseline",
}
NOTE = (
    "this arm minus the baseline on the same test patients; the interval resamples patients once "
    "for both arms (paired bootstrap), so it measures the change itself"
)


def scores_path(arm_file: Path, arm_name: str) -> Path:
    """Where an arm's test scores are kept, beside its results file."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in arm_name)
    return arm_file.with_name(f"{arm_file.stem}.{safe}.scores.npy")


def save_scores(path: Path, scores: np.ndarray) -> None:
    """Write scores atomically as a plain ``.npy`` (no pickle)."""
    with atomic.atomic_open(path, "wb") as fh:
        np.save(fh, np.asarray(scores, dtype=np.float64), allow_pickle=False)


def load_scores(path: Path, n_rows: int) -> np.ndarray | None:
    """Scores saved by :func:`save_scores`, or ``None`` when absent, unreadable or not one
    score per test row."""
    try:
        scores = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return scores if scores.ndim == 1 and len(scores) == n_rows else None


def attach_paired_changes(
    arms: list[ArmResult],
    scores: Mapping[str, np.ndarray],
    test: AuditDataset,
    spec: AuditSpec,
    group_metrics: GroupMetrics | None,
) -> list[str]:
    """Fill ``versus_baseline`` of every arm with scores, judging groups as the audit's
    ``group_metrics`` (whose results the changes compare) does; returns warnings for the report
    (a failure here is a warning too: it never costs the arms already trained)."""
    base = next((a for a in arms if a.name == "baseline" and a.status == "ok"), None)
    if base is None or group_metrics is None:
        return []
    scored = [a for a in arms if a.status == "ok" and a.metric("roc_auc") is not None]  # scored test rows
    missing = [a.name for a in scored if a.name not in scores]
    warnings = [
        f"arm {name!r}: no saved test scores (finished by an earlier version?); its change from the "
        "baseline has no paired interval"
        for name in missing
    ]
    paired = {a.name: scores[a.name] for a in scored if a.name in scores}
    if "baseline" not in paired or len(paired) < 2:
        return warnings
    st = spec.statistics
    try:
        changes = paired_changes(
            test.y,
            paired,
            test.sensitive,
            attribute_sets_of(spec.attributes, spec.intersections),
            patient_ids=test.patient_ids,
            threshold=spec.decision_threshold,
            n_boot=st.n_boot,
            ci_level=st.ci_level,
            seed=make_rng(spec.seed, "paired_changes"),
            min_group_size=st.min_group_size,
            min_group_positives=st.min_group_positives,
            missing=group_metrics.missing_attribute,
            max_groups=group_metrics.max_groups,
        )
    except (ValueError, FloatingPointError) as exc:
        return [*warnings, f"paired changes from the baseline not computed: {exc}"]
    for arm in arms:
        arm.versus_baseline = [
            MetricResult(
                metric=c.metric,
                plugin="fairaudit",
                attribute=c.attribute,
                label=LABELS[c.metric] + (f" ({c.attribute})" if c.attribute else ""),
                **c.interval(),
                notes=[NOTE],
                details={"reference": "baseline", "groups": c.groups, "excludes_zero": c.excludes_zero},
            )
            for c in changes.get(arm.name, [])
        ]
    return warnings
