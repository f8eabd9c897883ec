"""Per-group confusion counts, the rates derived from them and fairlearn-style gap aggregations.

Counts have the cell order of ``sklearn.metrics.confusion_matrix(...).ravel()``:
``[tn, fp, fn, tp]`` on the last axis.  Every function is vectorised over leading axes, so
the same code computes a point estimate ``(G, 4)`` and ``B`` bootstrap replicates ``(B, G, 4)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fairaudit.errors import DataError

TN, FP, FN, TP = 0, 1, 2, 3
CELLS = ("tn", "fp", "fn", "tp")

#: Which rows a rate conditions on; also the strata of its permutation test.
Condition = Literal["label", "prediction", "none"]


@dataclass(frozen=True)
class RateSpec:
    """A rate ``sum(num cells) / sum(den cells)`` of the confusion counts."""

    name: str
    label: str
    num: tuple[int, ...]
    den: tuple[int, ...]
    higher_is_better: bool | None
    condition: Condition


#: The confusion-matrix rates, keyed by fairlearn's names where fairlearn has one.
RATES: dict[str, RateSpec] = {
    r.name: r
    for r in (
        RateSpec(
            "true_positive_rate", "True positive rate (sensitivity)", (TP,), (FN, TP), True, "label"
        ),
        RateSpec("false_positive_rate", "False positive rate", (FP,), (TN, FP), False, "label"),
        RateSpec(
            "true_negative_rate", "True negative rate (specificity)", (TN,), (TN, FP), True, "label"
        ),
        RateSpec(
            "false_negative_rate",
            "False negative rate (underdiagnosis)",
            (FN,),
            (FN, TP),
            False,
            "label",
        ),
        RateSpec(
            "positive_predictive_value",
            "Positive predictive value (precision)",
            (TP,),
            (FP, TP),
            True,
            "prediction",
        ),
        RateSpec(
            "negative_predictive_value",
            "Negative predictive value",
            (TN,),
            (TN, FN),
            True,
            "prediction",
        ),
        RateSpec(
            "selection_rate",
            "Selection rate (predicted positive)",
            (FP, TP),
            (TN, FP, FN, TP),
            None,
            "none",
        ),
        RateSpec("accuracy", "Accuracy", (TN, TP), (TN, FP, FN, TP), True, "none"),
    )
}


def _binary(values: np.ndarray, what: str) -> np.ndarray:
    """Validate a 0/1 (or boolean) array and return it as int64; NaN gives a clear error."""
    arr = np.asarray(values).reshape(-1)
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataError(f"{what} contains NaN or infinite values; clean or drop those rows first")
    if arr.dtype.kind in "iu":
        ok = arr.size == 0 or (arr.min() >= 0 and arr.max() <= 1)
    elif arr.dtype.kind == "f":
        ok = bool(np.all((arr == 0) | (arr == 1)))
    else:
        ok = False
    if not ok:
        found = np.unique(arr)[:5].tolist() if arr.dtype.kind in "iuf" else f"dtype {arr.dtype}"
        raise DataError(f"{what} must be binary 0/1, found values {found}")
    return arr.astype(np.int64, copy=False)


def check_scores(y_score: np.ndarray, n: int | None = None) -> np.ndarray:
    """Scores as float64; a clear error for NaN/inf or a length mismatch."""
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    if n is not None and len(s) != n:
        raise DataError(f"y_score has {len(s)} rows, expected {n}")
    bad = ~np.isfinite(s)
    if bad.any():
        raise DataError(
            f"y_score contains {int(bad.sum())} NaN/infinite value(s) (first at row "
            f"{int(np.flatnonzero(bad)[0])}); the model's scores must be finite"
        )
    return s


def cell_index(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Cell of each row: ``2 * y_true + y_pred`` (0=tn, 1=fp, 2=fn, 3=tp)."""
    yt = _binary(y_true, "y_true")
    yp = _binary(y_pred, "y_pred")
    if len(yt) != len(yp):
        raise DataError(f"y_true has {len(yt)} rows but y_pred has {len(yp)}")
    return 2 * yt + yp


def group_confusion_counts(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    n_groups: int | None = None,
) -> np.ndarray:
    """Confusion counts per group ``(G, 4)``: ``[tn, fp, fn, tp]``; group ``-1`` rows skipped."""
    cells = cell_index(y_true, y_pred)
    codes = np.asarray(groups, dtype=np.int64)
    if len(codes) != len(cells):
        raise DataError(f"groups has {len(codes)} rows, expected {len(cells)}")
    keep = codes >= 0
    g = n_groups if n_groups is not None else (int(codes.max()) + 1 if keep.any() else 0)
    flat = np.bincount(codes[keep] * 4 + cells[keep], minlength=4 * g)
    return flat.reshape(g, 4)


def rate(counts: np.ndarray, name: str, zero_division: float = np.nan) -> np.ndarray:
    """Rate ``name`` (key of :data:`RATES`) from counts ``(..., 4)``; ``0/0`` -> ``zero_division``.

    ``zero_division=0.0`` reproduces fairlearn/scikit-learn (``confusion_matrix(normalize="true")``
    turns ``0/0`` into 0).
    """
    spec = RATES[name]
    c = np.asarray(counts, dtype=np.float64)
    num = c[..., spec.num[0]] if len(spec.num) == 1 else c[..., list(spec.num)].sum(-1)
    den = c[..., list(spec.den)].sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return np.where(den > 0, out, zero_division)


def denominators(counts: np.ndarray, name: str) -> np.ndarray:
    """The count a rate divides by (e.g. positives for TPR), shape ``counts.shape[:-1]``."""
    return np.asarray(counts)[..., list(RATES[name].den)].sum(-1)


# ---------------------------------------------------------------- fairlearn aggregations
def _nanmax(v: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        allnan = np.all(np.isnan(v), axis=axis)
        out = np.max(np.where(np.isnan(v), -np.inf, v), axis=axis)
    return np.where(allnan, np.nan, out)


def _nanmin(v: np.ndarray, axis: int = -1) -> np.ndarray:
    return -_nanmax(-v, axis=axis)


def difference(
    values: np.ndarray, overall: np.ndarray | None = None, method: str = "between_groups"
) -> np.ndarray:
    """fairlearn ``MetricFrame.difference``: max−min over groups (last axis) or max |group−overall|.

    NaN groups are skipped, as pandas does.
    """
    v = np.asarray(values, dtype=np.float64)
    if method == "between_groups":
        return _nanmax(v) - _nanmin(v)
    if method == "to_overall":
        if overall is None:
            raise ValueError("method='to_overall' needs the overall value")
        return _nanmax(np.abs(v - np.asarray(overall, dtype=np.float64)[..., None]))
    raise ValueError(f"method must be 'between_groups' or 'to_overall', got {method!r}")


def ratio(
    values: np.ndarray, overall: np.ndarray | None = None, method: str = "between_groups"
) -> np.ndarray:
    """fairlearn ``MetricFrame.ratio``: min/max over groups, or the smallest group/overall ratio."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "between_groups":
            return _nanmin(v) / _nanmax(v)
        if method == "to_overall":
            if overall is None:
                raise ValueError("method='to_overall' needs the overall value")
            r = v / np.asarray(overall, dtype=np.float64)[..., None]
            r = np.where(r > 1, 1.0 / r, r)
            return _nanmin(r)
    raise ValueError(f"method must be 'between_groups' or 'to_overall', got {method!r}")


def worst(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Worst group value over the last axis (min when higher is better, else max)."""
    v = np.asarray(values, dtype=np.float64)
    return _nanmin(v) if higher_is_better else _nanmax(v)


def signed_difference(
    counts: np.ndarray, name: str, reference: int, zero_division: float = 0.0
) -> np.ndarray:
    """AIF360 convention: rate(all other groups pooled) − rate(reference group), signed.

    ``counts`` is ``(..., G, 4)``; AIF360's "unprivileged" is every value other than ``priv_group``.
    """
    c = np.asarray(counts)
    others = np.delete(c, reference, axis=-2).sum(-2)
    return rate(others, name, zero_division) - rate(c[..., reference, :], name, zero_division)


def signed_ratio(
    counts: np.ndarray, name: str, reference: int, zero_division: float = 0.0
) -> np.ndarray:
    """AIF360 ``ratio``: rate(others pooled) / rate(reference) (``disparate_impact_ratio``)."""
    c = np.asarray(counts)
    others = np.delete(c, reference, axis=-2).sum(-2)
    num = rate(others, name, zero_division)
    den = rate(c[..., reference, :], name, zero_division)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den != 0, num / den, zero_division)
