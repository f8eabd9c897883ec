"""Permutation tests for group gaps (group labels exchangeable under the null).

Group labels are permuted among patients *within strata*: within label strata for TPR/FPR and
equalized-odds gaps (so each group keeps its numbers of positives and negatives, the null being
"the prediction is independent of the group given the label"), within prediction strata for
PPV/NPV, and over everyone for selection rate (demographic parity) and accuracy.  Score metrics
(AUC, AP, Brier, ECE) use label strata.  With one row per patient the confusion-count
permutation distribution is drawn exactly from hypergeometric laws (no row shuffling); with
several rows per patient whole patients are permuted, stratified by whether the patient has any
positive (label strata) or any predicted positive (prediction strata).

p-value: ``(1 + #{T_perm >= T_obs}) / (1 + n_permutations)`` (never 0; Phipson & Smyth 2010).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fairaudit.stats import confusion as cm
from fairaudit.stats.bootstrap import gap_fn, make_rng, prepare
from fairaudit.stats.groups import Groups
from fairaudit.stats.ranking import SCORE_METRICS, bin_edges, score_metric, sort_scores
from fairaudit.stats.resample import Design, permuted_counts, permuted_patient_groups

#: Gap statistics testable from confusion counts, with the strata their null permutes within.
COUNT_GAPS: dict[str, str] = {
    **{name: spec.condition for name, spec in cm.RATES.items()},
    "equalized_odds": "label",
    "equalized_odds_mean": "label",
}


@dataclass(frozen=True)
class PermutationResult:
    """Observed statistic, permutation p-value and the null distribution."""

    statistic: float
    p_value: float
    null: np.ndarray
    n_permutations: int


def permutation_pvalue(observed: float, null: np.ndarray) -> float:
    """One-sided p-value ``(1 + #{null >= observed}) / (1 + #null)``; NaN nulls are ignored."""
    null = np.asarray(null, dtype=np.float64)
    null = null[~np.isnan(null)]
    if not np.isfinite(observed):
        return float("nan")
    tol = 1e-12 * max(1.0, abs(observed))
    return float((1 + np.count_nonzero(null >= observed - tol)) / (1 + len(null)))


def count_gap_statistic(
    metric: str, zero_division: float = np.nan
) -> Callable[[np.ndarray], np.ndarray]:
    """Between-groups max−min gap of ``metric`` as a function of counts ``(..., G, 4)``."""
    if metric in ("equalized_odds", "equalized_odds_mean"):
        tpr = gap_fn("true_positive_rate", "difference", "between_groups", zero_division)
        fpr = gap_fn("false_positive_rate", "difference", "between_groups", zero_division)
        if metric == "equalized_odds":
            return lambda c: np.maximum(tpr(c), fpr(c))
        return lambda c: (tpr(c) + fpr(c)) / 2
    if metric not in cm.RATES:
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(COUNT_GAPS)}")
    return gap_fn(metric, "difference", "between_groups", zero_division)


def _patient_strata(design: Design, row_flag: np.ndarray) -> np.ndarray:
    flag = np.zeros(design.n_patients, dtype=np.int64)
    np.maximum.at(flag, design.row_patient, row_flag.astype(np.int64))
    return flag


def permutation_test_counts(
    counts: np.ndarray,
    metric: str,
    *,
    n_permutations: int = 1000,
    seed: int | np.random.Generator = 0,
    zero_division: float = np.nan,
) -> PermutationResult:
    """Permutation test of a confusion-metric gap from per-group counts (one row per patient)."""
    stat = count_gap_statistic(metric, zero_division)
    rng = seed if isinstance(seed, np.random.Generator) else make_rng(seed, "permutation", metric)
    observed = float(stat(np.asarray(counts)))
    null = stat(permuted_counts(counts, COUNT_GAPS[metric], n_permutations, rng))
    return PermutationResult(observed, permutation_pvalue(observed, null), null, n_permutations)


def permutation_test_gap(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: Groups | np.ndarray | Sequence[object],
    *,
    metric: str = "true_positive_rate",
    patient_ids: np.ndarray | None = None,
    n_permutations: int = 1000,
    seed: int | np.random.Generator = 0,
    zero_division: float = np.nan,
) -> PermutationResult:
    """Permutation test of the max−min gap of a confusion metric across groups.

    Parameters
    ----------
    metric:
        A rate of :data:`fairaudit.stats.confusion.RATES` (e.g. ``"true_positive_rate"`` for the
        equal-opportunity gap, ``"selection_rate"`` for demographic parity), or
        ``"equalized_odds"`` / ``"equalized_odds_mean"``.
    patient_ids:
        With several rows per patient, whole patients are permuted.
    """
    if metric not in COUNT_GAPS:
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(COUNT_GAPS)}")
    cells = cm.cell_index(y_true, y_pred)
    prep = prepare(groups, len(cells), patient_ids, stratified=True)
    n_groups = prep.groups.n_groups
    cells = cells[prep.keep]
    counts = np.bincount(prep.codes * 4 + cells, minlength=4 * n_groups).reshape(n_groups, 4)
    rng = seed if isinstance(seed, np.random.Generator) else make_rng(seed, "permutation", metric)
    if prep.design.singleton:
        return permutation_test_counts(
            counts, metric, n_permutations=n_permutations, seed=rng, zero_division=zero_division
        )
    stat = count_gap_statistic(metric, zero_division)
    observed = float(stat(counts))
    condition = COUNT_GAPS[metric]
    row_flag = {
        "label": cells >= 2,
        "prediction": cells % 2 == 1,
        "none": np.zeros(len(cells), bool),
    }[condition]
    strata = _patient_strata(prep.design, row_flag)
    null = []
    for gp in permuted_patient_groups(prep.design, strata, n_permutations, rng):
        b = gp.shape[0]
        keys = gp[:, prep.design.row_patient] * 4 + cells + (np.arange(b) * 4 * n_groups)[:, None]
        c = np.bincount(keys.ravel(), minlength=b * 4 * n_groups).reshape(b, n_groups, 4)
        null.append(stat(c))
    null_arr = np.concatenate(null) if null else np.zeros(0)
    return PermutationResult(
        observed, permutation_pvalue(observed, null_arr), null_arr, n_permutations
    )


def permutation_test_score_gap(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: Groups | np.ndarray | Sequence[object],
    *,
    metric: str = "roc_auc",
    patient_ids: np.ndarray | None = None,
    n_permutations: int = 1000,
    seed: int | np.random.Generator = 0,
    edges: np.ndarray | None = None,
) -> PermutationResult:
    """Permutation test of the max−min gap of a score metric (AUC, AP, Brier, ECE) across groups.

    Scores are sorted once; each permutation re-weights the sorted rows with 0/1 group indicators.
    """
    if metric not in SCORE_METRICS:
        raise ValueError(f"unknown score metric {metric!r}; choose from {sorted(SCORE_METRICS)}")
    y = cm._binary(y_true, "y_true")
    s = cm.check_scores(y_score, len(y))
    prep = prepare(groups, len(y), patient_ids, stratified=True)
    y, s = y[prep.keep], s[prep.keep]
    if edges is None:
        edges = bin_edges(s, 10, "quantile")
    n_groups = prep.groups.n_groups
    ss = sort_scores(y, s)
    row_group_sorted = prep.codes[ss.layout]

    def gaps(row_groups: np.ndarray) -> np.ndarray:
        per = np.stack(
            [
                score_metric(metric, ss, (row_groups == g).astype(np.float64), edges)
                for g in range(n_groups)
            ],
            axis=-1,
        )
        return cm.difference(per)

    observed = float(gaps(row_group_sorted[None, :])[0])
    rng = seed if isinstance(seed, np.random.Generator) else make_rng(seed, "permutation", metric)
    strata = _patient_strata(prep.design, y == 1)
    null = []
    patient_sorted = prep.design.row_patient[ss.layout]
    for gp in permuted_patient_groups(prep.design, strata, n_permutations, rng):
        null.append(gaps(gp[:, patient_sorted]))
    null_arr = np.concatenate(null) if null else np.zeros(0)
    return PermutationResult(
        observed, permutation_pvalue(observed, null_arr), null_arr, n_permutations
    )
