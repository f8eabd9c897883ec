"""Patient-level, group-stratified bootstrap CIs for group metrics and their gaps.

Percentile intervals (``numpy.quantile``, linear interpolation, as fairlearn's ``MetricFrame``);
resamples in which a metric is undefined (e.g. no positives) are skipped (``nanquantile``).
See :mod:`fairaudit.stats.resample` for the resampling scheme.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from fairaudit.errors import DataError
from fairaudit.stats import confusion as cm
from fairaudit.stats.grouped_auc import GroupedAUC
from fairaudit.stats.groups import Groups, encode_groups, patient_codes
from fairaudit.stats.intervals import ClusterStats
from fairaudit.stats.ranking import SCORE_METRICS, bin_edges, score_metric
from fairaudit.stats.resample import (
    COUNT_CHUNK_CELLS,
    Design,
    StratumCounts,
    bootstrap_key_counts,
    make_design,
)


def make_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and stable string keys (e.g. the attribute and metric)."""
    spawn = tuple(zlib.crc32(k.encode()) for k in keys)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn))


def percentile_ci(
    samples: np.ndarray, ci_level: float = 0.95, axis: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap ``samples`` along ``axis`` (NaN samples skipped)."""
    s = np.asarray(samples, dtype=np.float64)
    alpha = 1.0 - ci_level
    if s.shape[axis] == 0:
        shape = s.shape[:axis] + s.shape[axis + 1 :]
        return np.full(shape, np.nan), np.full(shape, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN
        q = np.nanquantile(s, [alpha / 2, 1 - alpha / 2], axis=axis)
    return q[0], q[1]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile CI (scalars, or arrays over groups)."""

    value: np.ndarray | float
    ci_low: np.ndarray | float
    ci_high: np.ndarray | float
    samples: np.ndarray | None = field(default=None, repr=False)


@dataclass
class Prepared:
    """Validated inputs of one attribute: kept rows, group codes and the resampling design."""

    groups: Groups
    keep: np.ndarray
    codes: np.ndarray
    design: Design


def prepare(
    groups: Groups | np.ndarray | Sequence[object],
    n: int,
    patient_ids: np.ndarray | None,
    stratified: bool,
) -> Prepared:
    """Encode ``groups``, drop rows without a group and build the resampling design."""
    g = groups if isinstance(groups, Groups) else encode_groups(groups)
    if len(g.codes) != n:
        raise DataError(f"groups has {len(g.codes)} rows, expected {n}")
    keep = g.kept
    codes = g.codes[keep]
    pids = None if patient_ids is None else patient_codes(patient_ids, n)[keep]
    return Prepared(g, keep, codes, make_design(pids, codes, stratified=stratified))


# ---------------------------------------------------------------- confusion counts
@dataclass
class CountsBootstrap:
    """Confusion counts ``(G, 4)`` and their bootstrap replicates ``(B, G, 4)``.

    ``clusters`` holds what the design effect of a rate needs (patients as clusters), for the
    intervals of :mod:`fairaudit.stats.intervals`.
    """

    counts: np.ndarray
    replicates: np.ndarray
    ci_level: float = 0.95
    clusters: ClusterStats | None = None

    def estimate(self, fn: Callable[[np.ndarray], np.ndarray]) -> Interval:
        """Apply ``fn`` (counts ``(..., G, 4)`` -> values) to the data and to every replicate."""
        value = fn(self.counts)
        samples = fn(self.replicates) if len(self.replicates) else np.zeros((0, *np.shape(value)))
        low, high = percentile_ci(samples, self.ci_level)
        return Interval(value, low, high, samples)

    def subset(self, groups: np.ndarray) -> CountsBootstrap:
        """Only some groups (e.g. those large enough to judge)."""
        clusters = None if self.clusters is None else self.clusters.take(groups)
        return CountsBootstrap(self.counts[groups], self.replicates[:, groups], self.ci_level, clusters)


def bootstrap_confusion_counts(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: Groups | np.ndarray | Sequence[object],
    *,
    patient_ids: np.ndarray | None = None,
    n_boot: int = 1000,
    ci_level: float = 0.95,
    seed: int | np.random.Generator = 0,
    stratified: bool = True,
) -> tuple[CountsBootstrap, Groups]:
    """Per-group confusion counts and ``n_boot`` patient-level bootstrap replicates of them."""
    cells = cm.cell_index(y_true, y_pred)
    prep = prepare(groups, len(cells), patient_ids, stratified)
    n_groups = prep.groups.n_groups
    keys = prep.codes * 4 + cells[prep.keep]
    counts = np.bincount(keys, minlength=4 * n_groups).reshape(n_groups, 4)
    rng = seed if isinstance(seed, np.random.Generator) else make_rng(seed, "confusion")
    reps = bootstrap_key_counts(keys, 4 * n_groups, prep.design, n_boot, rng).reshape(
        n_boot, n_groups, 4
    )
    patients = None if prep.design.singleton else prep.design.row_patient
    clusters = ClusterStats.from_rows(prep.codes, cells[prep.keep], patients, n_groups)
    return CountsBootstrap(counts, reps, ci_level, clusters), prep.groups


@dataclass
class GroupMetricTable:
    """Every confusion-matrix rate per group and overall, with fairlearn-style gaps and CIs."""

    groups: list[str]
    counts: np.ndarray
    by_group: dict[str, Interval]
    overall: dict[str, Interval]
    difference: dict[str, Interval]
    difference_to_overall: dict[str, Interval]
    ratio: dict[str, Interval]
    ratio_to_overall: dict[str, Interval]
    worst_group: dict[str, Interval]
    equalized_odds: dict[str, Interval]


def rate_fn(name: str, zero_division: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda c: cm.rate(c, name, zero_division)


def overall_rate_fn(name: str, zero_division: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda c: cm.rate(c.sum(-2), name, zero_division)


def gap_fn(
    name: str, kind: str, method: str, zero_division: float
) -> Callable[[np.ndarray], np.ndarray]:
    """``difference``/``ratio`` (fairlearn semantics) of rate ``name`` over the groups of counts."""
    agg = cm.difference if kind == "difference" else cm.ratio

    def fn(c: np.ndarray) -> np.ndarray:
        values = cm.rate(c, name, zero_division)
        overall = cm.rate(c.sum(-2), name, zero_division)
        return agg(values, overall, method)

    return fn


def equalized_odds_fn(
    kind: str, agg: str, method: str, zero_division: float
) -> Callable[[np.ndarray], np.ndarray]:
    """fairlearn ``equalized_odds_{difference,ratio}(agg=...)`` from counts."""
    tpr = gap_fn("true_positive_rate", kind, method, zero_division)
    fpr = gap_fn("false_positive_rate", kind, method, zero_division)

    def fn(c: np.ndarray) -> np.ndarray:
        a, b = tpr(c), fpr(c)
        if agg == "mean":
            return (a + b) / 2
        return np.maximum(a, b) if kind == "difference" else np.minimum(a, b)

    return fn


def bootstrap_group_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: Groups | np.ndarray | Sequence[object],
    *,
    patient_ids: np.ndarray | None = None,
    n_boot: int = 1000,
    ci_level: float = 0.95,
    seed: int = 0,
    stratified: bool = True,
    metrics: Sequence[str] | None = None,
    zero_division: float = np.nan,
) -> GroupMetricTable:
    """All confusion-matrix group metrics with bootstrap CIs.

    Parameters
    ----------
    y_true, y_pred:
        Binary labels and binary predictions.
    groups:
        Group label per row, or a :class:`~fairaudit.stats.groups.Groups`.
    patient_ids:
        Patient per row; patients are the resampling unit (default: each row its own patient).
    n_boot, ci_level, seed:
        Bootstrap resamples, interval level and seed.
    stratified:
        Resample patients within their group (default) or over the whole data (as fairlearn).
    metrics:
        Rates to compute (keys of :data:`fairaudit.stats.confusion.RATES`); default all.
    zero_division:
        Value of a rate whose denominator is 0 (``0.0`` reproduces fairlearn; default NaN).
    """
    boot, g = bootstrap_confusion_counts(
        y_true,
        y_pred,
        groups,
        patient_ids=patient_ids,
        n_boot=n_boot,
        ci_level=ci_level,
        seed=seed,
        stratified=stratified,
    )
    names = list(metrics) if metrics is not None else list(cm.RATES)
    unknown = sorted(set(names) - set(cm.RATES))
    if unknown:
        raise ValueError(f"unknown rate(s) {unknown}; choose from {sorted(cm.RATES)}")
    table = GroupMetricTable(g.names, boot.counts, {}, {}, {}, {}, {}, {}, {}, {})
    for name in names:
        zd = zero_division
        table.by_group[name] = boot.estimate(rate_fn(name, zd))
        table.overall[name] = boot.estimate(overall_rate_fn(name, zd))
        table.difference[name] = boot.estimate(gap_fn(name, "difference", "between_groups", zd))
        table.difference_to_overall[name] = boot.estimate(
            gap_fn(name, "difference", "to_overall", zd)
        )
        table.ratio[name] = boot.estimate(gap_fn(name, "ratio", "between_groups", zd))
        table.ratio_to_overall[name] = boot.estimate(gap_fn(name, "ratio", "to_overall", zd))
        hib = cm.RATES[name].higher_is_better
        if hib is not None:
            table.worst_group[name] = boot.estimate(
                lambda c, n=name, h=hib, z=zd: cm.worst(cm.rate(c, n, z), h)
            )
    if {"true_positive_rate", "false_positive_rate"} <= set(names):
        for agg in ("worst_case", "mean"):
            table.equalized_odds[f"difference_{agg}"] = boot.estimate(
                equalized_odds_fn("difference", agg, "between_groups", zero_division)
            )
            table.equalized_odds[f"ratio_{agg}"] = boot.estimate(
                equalized_odds_fn("ratio", agg, "between_groups", zero_division)
            )
    return table


# ---------------------------------------------------------------- score metrics
@dataclass
class ScoreBootstrap:
    """Score-based metrics per group and overall: point values and bootstrap samples."""

    groups: list[str]
    point: dict[str, np.ndarray]
    overall: dict[str, float]
    samples: dict[str, np.ndarray]
    overall_samples: dict[str, np.ndarray]
    edges: np.ndarray
    ci_level: float = 0.95

    def by_group(self, metric: str) -> Interval:
        low, high = percentile_ci(self.samples[metric], self.ci_level)
        return Interval(self.point[metric], low, high, self.samples[metric])

    def overall_interval(self, metric: str) -> Interval:
        low, high = percentile_ci(self.overall_samples[metric], self.ci_level)
        return Interval(self.overall[metric], low, high, self.overall_samples[metric])

    def gap(
        self, metric: str, groups: np.ndarray | None = None, kind: str = "difference"
    ) -> Interval:
        """Between-groups difference (max − min) or ratio (min / max) over ``groups`` (or all)."""
        sel = slice(None) if groups is None else groups
        agg = cm.difference if kind == "difference" else cm.ratio
        value = agg(self.point[metric][sel])
        samples = agg(self.samples[metric][:, sel])
        low, high = percentile_ci(samples, self.ci_level)
        return Interval(value, low, high, samples)

    def worst(
        self, metric: str, higher_is_better: bool, groups: np.ndarray | None = None
    ) -> Interval:
        sel = slice(None) if groups is None else groups
        value = cm.worst(self.point[metric][sel], higher_is_better)
        samples = cm.worst(self.samples[metric][:, sel], higher_is_better)
        low, high = percentile_ci(samples, self.ci_level)
        return Interval(value, low, high, samples)


def bootstrap_score_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: Groups | np.ndarray | Sequence[object] | None = None,
    *,
    metrics: Sequence[str] = ("roc_auc",),
    patient_ids: np.ndarray | None = None,
    n_boot: int = 1000,
    ci_level: float = 0.95,
    seed: int | np.random.Generator = 0,
    stratified: bool = True,
    n_bins: int = 10,
    bin_strategy: str = "quantile",
) -> ScoreBootstrap:
    """AUC, average precision, Brier score and ECE per group and overall, with bootstrap samples.

    Scores are ranked once per group (and once overall); a resample is a vector of integer
    patient multiplicities in that fixed layout (:class:`~fairaudit.stats.resample.StratumCounts`),
    so nothing is re-sorted, and every group's AUC and the overall AUC come from integer
    cumulative sums (:class:`~fairaudit.stats.grouped_auc.GroupedAUC`).  ECE bins are computed
    once on the pooled scores and shared by every group (comparable bins, fixed across resamples).
    """
    unknown = sorted(set(metrics) - set(SCORE_METRICS))
    if unknown:
        raise ValueError(f"unknown score metric(s) {unknown}; choose from {sorted(SCORE_METRICS)}")
    y = cm._binary(y_true, "y_true")
    s = cm.check_scores(y_score, len(y))
    prep = prepare(
        groups if groups is not None else np.zeros(len(y), dtype=np.int64),
        len(y),
        patient_ids,
        stratified,
    )
    yk, sk = y[prep.keep], s[prep.keep]
    edges = bin_edges(sk, n_bins, bin_strategy)
    n_groups = prep.groups.n_groups
    ranked = GroupedAUC(yk, sk, prep.codes, n_groups)
    point = {
        m: np.array([score_metric(m, ss, None, edges)[0] for ss in ranked.per_group]) for m in metrics
    }
    overall = {m: float(score_metric(m, ranked.overall, None, edges)[0]) for m in metrics}
    samples = {m: np.empty((n_boot, n_groups)) for m in metrics}
    overall_samples = {m: np.empty(n_boot) for m in metrics}
    rng = seed if isinstance(seed, np.random.Generator) else make_rng(seed, "scores")
    others = [m for m in metrics if m != "roc_auc"]
    bounds = list(zip(ranked.group_starts, ranked.group_starts + ranked.group_sizes, strict=True))
    for start, w in _layout_counts(prep, ranked, n_boot, rng):
        stop = start + len(w)
        if "roc_auc" in metrics:
            samples["roc_auc"][start:stop], overall_samples["roc_auc"][start:stop] = ranked.auc(w)
        if others:
            wf = w.astype(np.float64)
            w_all = wf[:, ranked.overall.layout]
            for m in others:
                overall_samples[m][start:stop] = score_metric(m, ranked.overall, w_all, edges)
                for gi, (ss, (a, b)) in enumerate(zip(ranked.per_group, bounds, strict=True)):
                    samples[m][start:stop, gi] = score_metric(m, ss, wf[:, a:b], edges)
    return ScoreBootstrap(
        prep.groups.names, point, overall, samples, overall_samples, edges, ci_level
    )


def _layout_counts(
    prep: Prepared, ranked: GroupedAUC, n_boot: int, rng: np.random.Generator
) -> Iterator[tuple[int, np.ndarray]]:
    """``(first resample, counts (b, n))``: each row's bootstrap multiplicity in ``ranked.layout``.

    With one row per patient and strata contiguous in the layout (groups when stratified, one
    stratum otherwise), the counts are drawn in the layout directly; otherwise per patient
    (patients ordered by stratum) and read off for each row.
    """
    design = prep.design
    n = ranked.n
    if n == 0:
        yield 0, np.zeros((n_boot, 0), dtype=np.uint8)
        return
    chunk = max(1, COUNT_CHUNK_CELLS // n)
    if design.singleton:
        cell_stratum = design.patient_stratum[ranked.layout]
        if not len(cell_stratum) or np.all(np.diff(cell_stratum) >= 0):
            sampler = StratumCounts(np.bincount(cell_stratum)[np.unique(cell_stratum)])
            done = 0
            for w in sampler.chunks(n_boot, rng, chunk):
                yield done, w
                done += len(w)
            return
    order = np.argsort(design.patient_stratum, kind="stable")
    where = np.empty(design.n_patients, dtype=np.int64)
    where[order] = np.arange(design.n_patients)
    sizes = np.bincount(design.patient_stratum)
    sampler = StratumCounts(sizes[sizes > 0])
    cell = where[design.row_patient[ranked.layout]]
    done = 0
    for w in sampler.chunks(n_boot, rng, chunk):
        yield done, np.take(w, cell, axis=1)
        done += len(w)


def bootstrap_auc(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: Groups | np.ndarray | Sequence[object] | None = None,
    *,
    patient_ids: np.ndarray | None = None,
    n_boot: int = 1000,
    ci_level: float = 0.95,
    seed: int = 0,
    stratified: bool = True,
) -> dict[str, object]:
    """ROC AUC overall and per group with percentile CIs, plus the max−min AUC gap.

    Returns ``{"overall": Interval, "by_group": {group: Interval}, "difference": Interval}``.
    """
    res = bootstrap_score_metrics(
        y_true,
        y_score,
        groups,
        metrics=("roc_auc",),
        patient_ids=patient_ids,
        n_boot=n_boot,
        ci_level=ci_level,
        seed=seed,
        stratified=stratified,
    )
    per = res.by_group("roc_auc")
    by_group = {
        name: Interval(float(per.value[i]), float(per.ci_low[i]), float(per.ci_high[i]))
        for i, name in enumerate(res.groups)
    }
    return {
        "overall": res.overall_interval("roc_auc"),
        "by_group": by_group,
        "difference": res.gap("roc_auc"),
    }
