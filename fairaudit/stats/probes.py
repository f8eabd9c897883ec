"""Statistics of attribute probes: (macro one-vs-rest) AUC and regression errors with patient-level
bootstrap CIs, computed from out-of-fold predictions."""

from __future__ import annotations

import numpy as np

from fairaudit.errors import DataError
from fairaudit.stats.bootstrap import Interval, make_rng, percentile_ci
from fairaudit.stats.groups import patient_codes
from fairaudit.stats.ranking import sort_scores, weighted_auc
from fairaudit.stats.resample import make_design, weight_chunks


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
    y = np.asarray(y_codes, dtype=np.int64)
    n_classes = int(y.max()) + 1
    p = _proba_matrix(proba, max(n_classes, 2))
    cols = [1] if p.shape[1] == 2 else list(range(p.shape[1]))
    sorted_cols = [sort_scores(y == c, p[:, c]) for c in cols]
    value = float(np.mean([weighted_auc(ss)[0] for ss in sorted_cols]))
    pids = None if patient_ids is None else patient_codes(patient_ids, len(y))
    design = make_design(pids, y, stratified=True)
    rng = seed if isinstance(seed, np.random.Generator) else make_rng(seed, "probe_auc")
    samples = []
    for w in weight_chunks(design, n_boot, rng, n_rows=len(y)):
        wr = w[:, design.row_patient].astype(np.float64)
        samples.append(np.mean([weighted_auc(ss, wr[:, ss.layout]) for ss in sorted_cols], axis=0))
    s = np.concatenate(samples) if samples else np.zeros(0)
    low, high = percentile_ci(s, ci_level)
    return Interval(value, float(low), float(high), s)


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
    y = np.asarray(y, dtype=np.float64)
    mae0, r20 = regression_errors(y, pred)
    pids = None if patient_ids is None else patient_codes(patient_ids, len(y))
    design = make_design(pids, np.zeros(len(y), dtype=np.int64), stratified=False)
    rng = seed if isinstance(seed, np.random.Generator) else make_rng(seed, "probe_regression")
    maes, r2s = [], []
    for w in weight_chunks(design, n_boot, rng, n_rows=len(y)):
        m, r = regression_errors(y, pred, w[:, design.row_patient])
        maes.append(m)
        r2s.append(r)
    out = []
    for point, parts in ((mae0[0], maes), (r20[0], r2s)):
        s = np.concatenate(parts) if parts else np.zeros(0)
        low, high = percentile_ci(s, ci_level)
        out.append(Interval(float(point), float(low), float(high), s))
    return out[0], out[1]
