"""Statistics of attribute probes: (macro one-vs-rest) AUC and regression errors with patient-level
bootstrap CIs, computed from out-of-fold predictions."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping

import numpy as np

from fairaudit.errors import DataError
from fairaudit.stats.bootstrap import Interval, make_rng, percentile_ci
from fairaudit.stats.groups import patient_codes
from fairaudit.stats.ranking import sort_scores, weighted_auc
from fairaudit.stats.resample import COUNT_CHUNK_CELLS, StratumCounts, make_design, weight_chunks


def _proba_matrix(proba: np.ndarray, n_classes: int) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:
        if n_classes != 2:
            raise DataError("a 1-D score needs a binary target")
        p = np.stack([1 - p, p], axis=1)
    if p.shape[1] != n_classes:
        raise DataError(f"proba has {p.shape[1]} columns for {n_classes} classes")
    if not np.all(np.isfinite(p)):
        raise DataError("probe scores contain NaN/inf")
    return p


def macro_auc(y_codes: np.ndarray, proba: np.ndarray) -> float:
    """ROC AUC (binary) or one-vs-rest macro AUC (multi-class) of class codes ``0..K-1``.

    Equals ``sklearn.metrics.roc_auc_score(y, proba, multi_class="ovr", average="macro")``.
    """
    y = np.asarray(y_codes, dtype=np.int64)
    k = int(y.max()) + 1 if len(y) else 0
    p = _proba_matrix(proba, max(k, 2))
    if p.shape[1] == 2:
        return float(weighted_auc(sort_scores(y == 1, p[:, 1]))[0])
    return float(
        np.mean([weighted_auc(sort_scores(y == c, p[:, c]))[0] for c in range(p.shape[1])])
    )


def _patient_counts(
    y: np.ndarray, patient_ids: np.ndarray | None, n_boot: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Bootstrap counts of every row ``(b, n)``: patients resampled within their class."""
    pids = None if patient_ids is None else patient_codes(patient_ids, len(y))
    design = make_design(pids, y, stratified=True)
    order = np.argsort(design.patient_stratum, kind="stable")
    where = np.empty(design.n_patients, dtype=np.int64)
    where[order] = np.arange(design.n_patients)
    sizes = np.bincount(design.patient_stratum)
    sampler = StratumCounts(sizes[sizes > 0])
    cell = where[design.row_patient]
    for w in sampler.chunks(n_boot, rng, max(1, COUNT_CHUNK_CELLS // max(len(y), 1))):
        yield np.take(w, cell, axis=1)


def bootstrap_family_auc(
    y_codes: np.ndarray,
    probas: Mapping[str, np.ndarray],
    *,
    patient_ids: np.ndarray | None = None,
    n_boot: int = 1000,
    ci_level: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> tuple[dict[str, Interval], Interval]:
    """Macro AUC of several probes of the same rows, bootstrapped together, and the strongest.

    Every probe is scored on the same patient resamples (stratified by class), so the strongest
    probe's interval is the percentile interval of the per-resample *maximum* over probes: it
    carries the selection of the strongest, not just the chosen probe's own noise.
    """
    y = np.asarray(y_codes, dtype=np.int64)
    n_classes = int(y.max()) + 1 if len(y) else 0
    sorted_cols = {}
    for name, proba in probas.items():
        p = _proba_matrix(proba, max(n_classes, 2))
        cols = [1] if p.shape[1] == 2 else list(range(p.shape[1]))
        sorted_cols[name] = [sort_scores(y == c, p[:, c]) for c in cols]
    values = {k: float(np.mean([weighted_auc(ss)[0] for ss in v])) for k, v in sorted_cols.items()}
    rng = seed if isinstance(seed, np.random.Generator) else make_rng(seed, "probe_auc")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in probas}
    for w in _patient_counts(y, patient_ids, n_boot, rng):
        for name, cols in sorted_cols.items():
            parts[name].append(np.mean([weighted_auc(ss, np.take(w, ss.layout, axis=1)) for ss in cols], axis=0))
    out = {}
    for name in probas:
        samples = np.concatenate(parts[name]) if parts[name] else np.zeros(0)
        low, high = percentile_ci(samples, ci_level)
        out[name] = Interval(values[name], float(low), float(high), samples)
    stacked = np.stack([out[k].samples for k in probas])  # type: ignore[misc]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples
        best_samples = np.nanmax(stacked, axis=0) if stacked.shape[1] else np.zeros(0)
    low, high = percentile_ci(best_samples, ci_level)
    strongest = Interval(max(values.values()), float(low), float(high), best_samples)
    return out, strongest


def bootstrap_macro_auc(
    y_codes: np.ndarray,
    proba: np.ndarray,
    *,
    patient_ids: np.ndarray | None = None,
    n_boot: int = 1000,
    ci_level: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> Interval:
    """Macro AUC with a patient-level bootstrap CI stratified by class (each class sorted once)."""
    members, _ = bootstrap_family_auc(
        y_codes, {"probe": proba}, patient_ids=patient_ids, n_boot=n_boot, ci_level=ci_level, seed=seed
    )
    return members["probe"]


def regression_errors(
    y: np.ndarray, pred: np.ndarray, w: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted MAE and R² per row of weights ``w`` ``(b, n)`` (unweighted when ``None``)."""
    y = np.asarray(y, dtype=np.float64)
    e = y - np.asarray(pred, dtype=np.float64)
    w2 = np.ones((1, len(y))) if w is None else np.atleast_2d(np.asarray(w, dtype=np.float64))
    tot = w2.sum(1)
    mae = (w2 @ np.abs(e)) / tot
    mean = (w2 @ y) / tot
    ss_tot = w2 @ (y**2) - tot * mean**2
    ss_res = w2 @ (e**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)
    return mae, r2


def bootstrap_family_regression(
    y: np.ndarray,
    preds: Mapping[str, np.ndarray],
    *,
    patient_ids: np.ndarray | None = None,
    n_boot: int = 1000,
    ci_level: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> tuple[dict[str, tuple[Interval, Interval]], str, Interval]:
    """MAE and R² of several probes of a continuous target, bootstrapped together.

    Returns ``{probe: (mae, r2)}``, the strongest probe (highest R²) and the interval of the
    per-resample maximum R² over the probes (the strongest, selection included).
    """
    y = np.asarray(y, dtype=np.float64)
    names = list(preds)
    pids = None if patient_ids is None else patient_codes(patient_ids, len(y))
    design = make_design(pids, np.zeros(len(y), dtype=np.int64), stratified=False)
    rng = seed if isinstance(seed, np.random.Generator) else make_rng(seed, "probe_regression")
    parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {k: ([], []) for k in names}
    for w in weight_chunks(design, n_boot, rng, n_rows=len(y)):
        rows = w[:, design.row_patient]
        for name in names:
            m, r = regression_errors(y, preds[name], rows)
            parts[name][0].append(m)
            parts[name][1].append(r)
    out: dict[str, tuple[Interval, Interval]] = {}
    for name in names:
        mae0, r20 = regression_errors(y, preds[name])
        pair = []
        for point, chunks in ((mae0[0], parts[name][0]), (r20[0], parts[name][1])):
            samples = np.concatenate(chunks) if chunks else np.zeros(0)
            low, high = percentile_ci(samples, ci_level)
            pair.append(Interval(float(point), float(low), float(high), samples))
        out[name] = (pair[0], pair[1])
    best = max(names, key=lambda k: -np.inf if np.isnan(out[k][1].value) else out[k][1].value)
    stacked = np.stack([out[k][1].samples for k in names])  # type: ignore[misc]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        top = np.nanmax(stacked, axis=0) if stacked.shape[1] else np.zeros(0)
    low, high = percentile_ci(top, ci_level)
    return out, best, Interval(out[best][1].value, float(low), float(high), top)


def bootstrap_regression(
    y: np.ndarray,
    pred: np.ndarray,
    *,
    patient_ids: np.ndarray | None = None,
    n_boot: int = 1000,
    ci_level: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> tuple[Interval, Interval]:
    """MAE and R² of a continuous-target probe with patient-level bootstrap CIs."""
    members, _, _ = bootstrap_family_regression(
        y, {"probe": pred}, patient_ids=patient_ids, n_boot=n_boot, ci_level=ci_level, seed=seed
    )
    return members["probe"]
