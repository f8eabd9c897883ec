"""Paired bootstrap of each arm's change from a reference arm (the baseline).

Every arm is scored on the same test patients, so one patient resample serves all arms: the
change's interval then reflects how much the *difference* varies, which is usually far less
than either arm's own interval (their errors are correlated).  Whether an arm's CI overlaps
the baseline's value says little about that; this module answers it directly.

Compared here: overall ROC AUC, worst-group ROC AUC (over the groups of every attribute that
are large enough to judge) and, per attribute, the equal opportunity difference (max - min
TPR over judged groups) at the decision threshold.  The judged groups follow the
``group_metrics`` rules: at least ``min_group_positives``
positives (AUC: as many positives *and* negatives).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from fairaudit.stats import confusion as cm
from fairaudit.stats.bootstrap import percentile_ci
from fairaudit.stats.groups import Groups, encode_groups, patient_codes
from fairaudit.stats.intervals import too_few_events
from fairaudit.stats.ranking import sort_scores, weighted_auc
from fairaudit.stats.resample import make_design, weight_chunks


@dataclass(frozen=True)
class PairedChange:
    """``arm - reference`` for one metric, with its paired-bootstrap percentile interval."""

    metric: str
    attribute: str | None
    value: float
    ci_low: float
    ci_high: float
    groups: list[str] = field(default_factory=list)

    def interval(self) -> dict[str, float | None]:
        """``value``, ``ci_low`` and ``ci_high``, NaN as ``None`` (JSON-safe)."""
        return {k: float(v) if np.isfinite(v) else None for k, v in
                (("value", self.value), ("ci_low", self.ci_low), ("ci_high", self.ci_high))}

    @property
    def excludes_zero(self) -> bool:
        """The interval lies wholly on one side of zero (a change beyond resampling noise)."""
        return bool(np.isfinite(self.ci_low) and np.isfinite(self.ci_high) and (self.ci_low > 0 or self.ci_high < 0))


@dataclass
class _Judged:
    """Judged groups of one attribute: group codes for TPR and for AUC, the one-hot confusion
    cell of every row in the TPR groups ``(n, 4k)`` (shared by every arm's labels) and the rows
    of each AUC group."""

    groups: Groups
    tpr: list[int]
    auc: list[int]
    auc_rows: list[np.ndarray]


def _judged(groups: Groups, y: np.ndarray, min_group_positives: int) -> _Judged:
    """The groups ``group_metrics`` judges (:func:`~fairaudit.stats.intervals.too_few_events`):
    TPR needs ``min_group_positives`` positives, AUC as many positives and negatives."""
    codes = groups.codes
    n = np.bincount(codes[codes >= 0], minlength=groups.n_groups)
    n_pos = np.bincount(codes[codes >= 0], weights=y[codes >= 0], minlength=groups.n_groups)
    events = {"positives": n_pos, "negatives": n - n_pos}
    minimum = dict.fromkeys(events, min_group_positives)
    tpr_small, _ = too_few_events(groups.names, {"positives": n_pos}, minimum)
    auc_small, _ = too_few_events(groups.names, events, minimum)
    tpr, auc = list(np.flatnonzero(~tpr_small)), list(np.flatnonzero(~auc_small))
    # like group_metrics: no gap and no worst group without two groups to compare
    tpr, auc = (tpr if len(tpr) >= 2 else []), (auc if len(auc) >= 2 else [])
    return _Judged(groups, tpr, auc, [np.flatnonzero(codes == g) for g in auc])


def _cell_matrix(judged: _Judged, cells: np.ndarray) -> np.ndarray:
    """One-hot ``(n, 4k)`` of each row's confusion cell within its judged TPR group (k groups)."""
    position = np.full(judged.groups.n_groups, -1, dtype=np.int64)
    position[judged.tpr] = np.arange(len(judged.tpr))
    where = np.where(judged.groups.codes >= 0, position[np.maximum(judged.groups.codes, 0)], -1)
    out = np.zeros((len(cells), 4 * len(judged.tpr)), dtype=np.float64)
    rows = np.flatnonzero(where >= 0)
    out[rows, 4 * where[rows] + cells[rows]] = 1.0
    return out


class _ArmStatistics:
    """Per-replicate metrics of one arm's scores under row weights ``(b, n)``.

    The equal opportunity difference is the gap of the true positive rate computed by
    :func:`fairaudit.stats.confusion.rate` and :func:`~fairaudit.stats.confusion.difference`
    on weighted confusion counts: the same functions ``group_metrics`` applies to its counts.
    """

    def __init__(self, y: np.ndarray, scores: np.ndarray, threshold: float, judged: list[_Judged]):
        self.overall = sort_scores(y, scores)
        self.judged = judged
        cells = cm.cell_index(y, (scores >= threshold).astype(np.int64))
        self.cells = [_cell_matrix(j, cells) if j.tpr else None for j in judged]
        self.auc_parts = [(rows, sort_scores(y[rows], scores[rows])) for j in judged for rows in j.auc_rows]

    def __call__(self, w: np.ndarray) -> dict[str, np.ndarray]:
        out = {"roc_auc": weighted_auc(self.overall, w[:, self.overall.layout])}
        if self.auc_parts:
            per_group = [weighted_auc(ss, w[:, rows][:, ss.layout]) for rows, ss in self.auc_parts]
            out["worst_group_auc"] = np.nanmin(np.stack(per_group, axis=1), axis=1)
        for j, onehot in zip(self.judged, self.cells, strict=True):
            if onehot is not None:
                counts = (w @ onehot).reshape(len(w), len(j.tpr), 4)
                out[f"equal_opportunity_difference|{j.groups.attribute}"] = cm.difference(
                    cm.rate(counts, "true_positive_rate"))
        return out


#: Per-replicate statistics of one arm: row weights ``(b, n)`` -> ``{key: (b,) values}``.
ArmStatistic = Callable[[np.ndarray], dict[str, np.ndarray]]


def paired_bootstrap(
    statistics: Mapping[str, ArmStatistic],
    *,
    reference: str,
    n_rows: int,
    patient_ids: np.ndarray | None = None,
    strata: np.ndarray | None = None,
    n_boot: int = 1000,
    ci_level: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Each arm's change from ``reference`` in every statistic, with paired percentile intervals.

    ``statistics[arm](w)`` returns the arm's statistics under row weights ``w`` (shape
    ``(b, n_rows)``; all ones = the point estimate).  Patients are resampled (within ``strata``,
    one code per row, when given) once per replicate and the same resample weighs every arm, so
    the interval is that of the difference.  Returns ``arm -> key -> (change, low, high)`` for every
    arm but the reference; ``n_boot = 0`` gives NaN intervals.  The building block of
    :meth:`~fairaudit.base.BaseMetric.paired_changes`.
    """
    if reference not in statistics:
        raise ValueError(f"reference arm {reference!r} has no scores")
    ones = np.ones((1, n_rows))
    point = {name: {k: float(v[0]) for k, v in st(ones).items()} for name, st in statistics.items()}
    codes = np.zeros(n_rows, np.int64) if strata is None else np.maximum(np.asarray(strata, np.int64), 0)
    design = make_design(patient_codes(patient_ids, n_rows), codes, stratified=True)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    deltas: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in statistics if name != reference}
    for w_patients in weight_chunks(design, n_boot, rng, n_rows=n_rows) if n_boot > 0 else ():
        w = w_patients[:, design.row_patient].astype(np.float64)
        ref = statistics[reference](w)
        for name in deltas:
            for key, values in statistics[name](w).items():
                deltas[name].setdefault(key, []).append(values - ref[key])
    out = {}
    for name, found in deltas.items():
        out[name] = {}
        for key, ref_value in point[reference].items():
            low, high = percentile_ci(np.concatenate(found[key]) if key in found else np.zeros(0), ci_level)
            out[name][key] = (point[name][key] - ref_value, float(low), float(high))
    return out


def paired_changes(
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    sensitive: pd.DataFrame,
    attributes: Sequence[str | Sequence[str]],
    *,
    min_group_positives: int,
    reference: str = "baseline",
    patient_ids: np.ndarray | None = None,
    threshold: float = 0.5,
    n_boot: int = 1000,
    ci_level: float = 0.95,
    seed: int | np.random.Generator = 0,
    missing: Literal["group", "drop"] = "group",
    max_groups: int | None = None,
) -> dict[str, list[PairedChange]]:
    """``arm - reference`` for every arm of ``scores`` but the reference, with paired CIs.

    ``attributes`` are column names or lists of columns (intersections); one with more than
    ``max_groups`` groups is skipped, as ``group_metrics`` does.  Groups are judged with the
    caller's ``min_group_positives`` events (no default: it must be the
    audit's).  Patients are resampled (stratified by the first attribute's groups) once per
    replicate and the same resample scores every arm.  ``n_boot = 0`` gives point changes with
    NaN intervals.
    """
    y = np.asarray(y_true).astype(np.int64)
    n = len(y)
    _check_scores(scores, reference, n)
    judged = _judge_attributes(y, sensitive, attributes, missing, max_groups, min_group_positives)
    stats = {name: _ArmStatistics(y, np.asarray(s, dtype=np.float64), threshold, judged) for name, s in scores.items()}
    changes = paired_bootstrap(stats, reference=reference, n_rows=n, patient_ids=patient_ids,
                               strata=judged[0].groups.codes if judged else None, n_boot=n_boot, ci_level=ci_level,
                               seed=seed)
    tpr_groups = {j.groups.attribute: [j.groups.names[g] for g in j.tpr] for j in judged}
    return {name: [_change(key, *interval, tpr_groups) for key, interval in found.items()]
            for name, found in changes.items()}


def _check_scores(scores: Mapping[str, np.ndarray], reference: str, n: int) -> None:
    if reference not in scores:
        raise ValueError(f"reference arm {reference!r} has no scores")
    for name, s in scores.items():
        if len(s) != n:
            raise ValueError(f"arm {name!r}: {len(s)} scores for {n} test rows")


def _judge_attributes(
    y: np.ndarray, sensitive: pd.DataFrame, attributes: Sequence[str | Sequence[str]],
    missing: Literal["group", "drop"], max_groups: int | None, min_group_positives: int,
) -> list[_Judged]:
    """Judged groups of every attribute set with two to ``max_groups`` groups."""
    encoded = [encode_groups(sensitive, [a] if isinstance(a, str) else list(a), missing=missing) for a in attributes]
    return [_judged(g, y, min_group_positives) for g in encoded
            if g.n_groups >= 2 and (max_groups is None or g.n_groups <= max_groups)]


def _change(key: str, value: float, low: float, high: float, tpr_groups: Mapping[str, list[str]]) -> PairedChange:
    metric, _, attribute = key.partition("|")
    return PairedChange(metric=metric, attribute=attribute or None, value=value, ci_low=low, ci_high=high,
                        groups=tpr_groups.get(attribute, []))
