"""Score-based metrics from one sort plus weighted cumulative sums (no re-sort per resample).

Rows are sorted once by score and split by label into a fixed *layout* ``[negatives, positives]``
(each sorted ascending).  A resample or permutation is then just a weight matrix ``W`` of shape
``(b, n)`` in that layout (bootstrap multiplicities, or 0/1 group indicators), and every metric is
computed for all ``b`` rows of ``W`` at once:

* ROC AUC = ``sum_i w_i (N_<i + N_<=i) / (2 P N)`` over positives ``i``, where ``N_<i`` / ``N_<=i``
  are the negative weights with a lower / lower-or-equal score (a cumulative sum over the sorted
  negatives read at precomputed ranks).  Ties get half credit, exactly as
  ``sklearn.metrics.roc_auc_score``;
* average precision = ``sum_i w_i precision(s_i) / P`` with ``precision(t)`` the weighted precision
  of ``score >= t`` (``sklearn.metrics.average_precision_score``);
* Brier score and binned calibration error from per-bin weighted sums (matrix products).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairaudit.stats.confusion import _binary, check_scores


@dataclass(frozen=True)
class SortedScores:
    """Rows sorted by score once and split by label; weights use the layout ``[neg, pos]``.

    Attributes
    ----------
    layout:
        Input row index of each layout position (``n_neg`` negatives then ``n_pos`` positives).
    score:
        Score of each layout position.
    lo, hi:
        For each positive: number of negatives with a strictly lower / lower-or-equal score.
    plo:
        For each positive: number of positives with a strictly lower score.
    """

    layout: np.ndarray
    score: np.ndarray
    n_neg: int
    lo: np.ndarray
    hi: np.ndarray
    plo: np.ndarray

    @property
    def n(self) -> int:
        return len(self.layout)

    @property
    def n_pos(self) -> int:
        return self.n - self.n_neg

    @property
    def y(self) -> np.ndarray:
        return np.r_[np.zeros(self.n_neg), np.ones(self.n_pos)]


def sort_scores(y_true: np.ndarray, y_score: np.ndarray) -> SortedScores:
    """Sort each class by score (stable) and precompute the ranks the metrics read."""
    y = _binary(y_true, "y_true")
    s = check_scores(y_score, len(y))
    neg = np.flatnonzero(y == 0)
    pos = np.flatnonzero(y == 1)
    neg = neg[np.argsort(s[neg], kind="stable")]
    pos = pos[np.argsort(s[pos], kind="stable")]
    sn, sp = s[neg], s[pos]
    lo = np.searchsorted(sn, sp, side="left")
    hi = np.searchsorted(sn, sp, side="right")
    plo = np.searchsorted(sp, sp, side="left")
    return SortedScores(np.r_[neg, pos], np.r_[sn, sp], len(neg), lo, hi, plo)


def _weights(ss: SortedScores, w: np.ndarray | None) -> np.ndarray:
    if w is None:
        return np.ones((1, ss.n))
    return np.atleast_2d(np.asarray(w, dtype=np.float64))


def _cumsum0(a: np.ndarray) -> np.ndarray:
    """Cumulative sum along axis 1 with a leading zero column."""
    out = np.zeros((a.shape[0], a.shape[1] + 1))
    np.cumsum(a, axis=1, out=out[:, 1:])
    return out


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_auc(ss: SortedScores, w: np.ndarray | None = None) -> np.ndarray:
    """ROC AUC per row of weights ``w`` ``(b, n)`` in ``ss.layout``; NaN without both classes.

    Integer weights (bootstrap counts) take an exact integer path: the same values, several
    times faster (an int64 cumulative sum instead of a float64 one).
    """
    if w is not None and np.issubdtype(np.asarray(w).dtype, np.integer):
        return _integer_auc(ss, np.atleast_2d(np.asarray(w)))
    w2 = _weights(ss, w)
    wneg, wpos = w2[:, : ss.n_neg], w2[:, ss.n_neg :]
    c = _cumsum0(wneg)
    num = np.einsum("ij,ij->i", wpos, c[:, ss.lo] + c[:, ss.hi])
    den = 2.0 * wpos.sum(1) * c[:, -1]
    return _safe_div(num, den)


def _integer_auc(ss: SortedScores, w: np.ndarray) -> np.ndarray:
    wneg, wpos = w[:, : ss.n_neg], w[:, ss.n_neg :]
    c = np.zeros((w.shape[0], ss.n_neg + 1), dtype=np.int64)
    np.cumsum(wneg, axis=1, dtype=np.int64, out=c[:, 1:])
    num = np.einsum("ij,ij->i", wpos, np.take(c, ss.lo, axis=1) + np.take(c, ss.hi, axis=1), dtype=np.int64)
    den = 2 * wpos.sum(axis=1, dtype=np.int64) * c[:, -1]
    return _safe_div(num.astype(np.float64), den.astype(np.float64))


def weighted_average_precision(ss: SortedScores, w: np.ndarray | None = None) -> np.ndarray:
    """Average precision (scikit-learn's step-wise sum) per weight row; NaN if no positive."""
    w2 = _weights(ss, w)
    wneg, wpos = w2[:, : ss.n_neg], w2[:, ss.n_neg :]
    cn = _cumsum0(wneg)
    cp = _cumsum0(wpos)
    total_p = cp[:, -1:]
    tp = total_p - cp[:, ss.plo]  # positives scoring >= s_i
    fp = cn[:, -1:] - cn[:, ss.lo]  # negatives scoring >= s_i
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1.0), 0.0)
    return _safe_div(np.einsum("ij,ij->i", wpos, precision), total_p[:, 0])


def weighted_brier(ss: SortedScores, w: np.ndarray | None = None) -> np.ndarray:
    """Brier score ``mean((score - y)^2)`` per weight row."""
    err = (ss.score - ss.y) ** 2
    w2 = _weights(ss, w)
    return _safe_div(w2 @ err, w2.sum(1))


def bin_edges(y_score: np.ndarray, n_bins: int = 10, strategy: str = "quantile") -> np.ndarray:
    """Calibration bin edges: equal width on [0, 1] (``"uniform"``) or equal mass (``"quantile"``).

    Quantile edges follow ``sklearn.calibration.calibration_curve`` (percentiles of the scores).
    """
    s = np.asarray(y_score, dtype=np.float64)
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        if not len(s):
            return np.linspace(0.0, 1.0, n_bins + 1)
        return np.percentile(s, np.linspace(0, 100, n_bins + 1))
    raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")


def calibration_sums(
    ss: SortedScores, edges: np.ndarray, w: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin weighted (count, sum of scores, sum of labels), each ``(b, n_bins)``."""
    n_bins = len(edges) - 1
    w2 = _weights(ss, w)
    inner = np.asarray(edges, dtype=np.float64)[1:-1]
    sums = [np.zeros((w2.shape[0], n_bins)) for _ in range(3)]
    for part in (slice(0, ss.n_neg), slice(ss.n_neg, ss.n)):
        sc = ss.score[part]
        if not len(sc):
            continue
        # calibration_curve's bin of a score is searchsorted(inner, score): bins are contiguous
        # in each class's ascending scores, so bin sums are differences of cumulative sums
        ids = np.searchsorted(inner, sc)
        lo = np.searchsorted(ids, np.arange(n_bins), side="left")
        hi = np.searchsorted(ids, np.arange(n_bins), side="right")
        wp = w2[:, part]
        c_w = _cumsum0(wp)
        c_s = _cumsum0(wp * sc)
        sums[0] += c_w[:, hi] - c_w[:, lo]
        sums[1] += c_s[:, hi] - c_s[:, lo]
        if part.start == ss.n_neg:
            sums[2] += c_w[:, hi] - c_w[:, lo]
    count, ssum, ysum = sums
    return count, ssum, ysum


def weighted_ece(ss: SortedScores, edges: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Expected calibration error ``sum_b (n_b / n) |mean(y)_b - mean(score)_b|`` per weight row."""
    cnt, ssum, ysum = calibration_sums(ss, edges, w)
    return _safe_div(np.abs(ysum - ssum).sum(1), cnt.sum(1))


#: Score metrics: name -> (label, higher_is_better).
SCORE_METRICS = {
    "roc_auc": ("ROC AUC", True),
    "average_precision": ("Average precision", True),
    "brier_score": ("Brier score", False),
    "expected_calibration_error": ("Expected calibration error", False),
}


def score_metric(
    name: str, ss: SortedScores, w: np.ndarray | None = None, edges: np.ndarray | None = None
) -> np.ndarray:
    """Weighted implementation of score metric ``name`` (a key of ``SCORE_METRICS``)."""
    if name == "roc_auc":
        return weighted_auc(ss, w)
    if name == "average_precision":
        return weighted_average_precision(ss, w)
    if name == "brier_score":
        return weighted_brier(ss, w)
    if name == "expected_calibration_error":
        if edges is None:
            raise ValueError("expected_calibration_error needs bin edges")
        return weighted_ece(ss, edges, w)
    raise ValueError(f"unknown score metric {name!r}; choose from {sorted(SCORE_METRICS)}")


def roc_points(
    y_true: np.ndarray, y_score: np.ndarray, max_points: int = 101
) -> dict[str, list[float]]:
    """ROC curve (a threshold at every distinct score, highest first), thinned to ``max_points``."""
    from sklearn.metrics import roc_curve

    y = _binary(y_true, "y_true")
    s = check_scores(y_score, len(y))
    if y.min(initial=1) == y.max(initial=0):
        return {"fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=True)
    if len(tpr) > max_points:
        keep = np.unique(np.round(np.linspace(0, len(tpr) - 1, max_points)).astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [float(x) for x in fpr], "tpr": [float(x) for x in tpr]}


def calibration_points(
    y_true: np.ndarray, y_score: np.ndarray, edges: np.ndarray
) -> dict[str, list[float]]:
    """Reliability diagram for fixed bin edges (non-empty bins only)."""
    ss = sort_scores(y_true, y_score)
    cnt, ssum, ysum = (a[0] for a in calibration_sums(ss, edges))
    keep = cnt > 0
    return {
        "mean_predicted": [float(x) for x in ssum[keep] / cnt[keep]],
        "fraction_positive": [float(x) for x in ysum[keep] / cnt[keep]],
        "count": [int(x) for x in cnt[keep]],
    }
