"""Gradient-boosted trees of the probe family on features binned once.

scikit-learn's ``HistGradientBoosting*`` bins its training rows on every fit (quantiles of
every feature, then a pass over the rows): at 15 fits (folds x targets) of a few dozen rounds
on 64 components that was about half of the trees' time.  The family bins every row once
instead (quantiles of each component over all probe rows: no labels involved, like the
principal axes) and hands the trees the integer bin codes; the codes are their own bins, so
each fit only records the identity binning.  Without the hook (a scikit-learn whose private
``_bin_data`` changed) the estimator bins the codes itself and reaches the same bins, slower.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


def bin_codes(z: np.ndarray, max_bins: int) -> np.ndarray:
    """``z`` ``(n, d)`` -> bin codes ``0 .. max_bins - 1`` (float64) at each column's quantiles."""
    cuts = np.quantile(z, np.linspace(0.0, 1.0, max_bins + 1)[1:-1], axis=0)  # (max_bins - 1, d)
    codes = np.empty(z.shape, dtype=np.float64)
    for j in range(z.shape[1]):
        codes[:, j] = np.searchsorted(np.unique(cuts[:, j]), z[:, j], side="left")
    return codes


def _identity_bins(estimator: Any, X: np.ndarray, is_training_data: bool) -> np.ndarray:
    """Bin codes as ``_BinMapper.transform`` would return them, the mapper fitted to identity."""
    mapper = estimator._bin_mapper
    if is_training_data:
        top = X.max(axis=0).astype(np.int64) if len(X) else np.zeros(X.shape[1], dtype=np.int64)
        mapper.missing_values_bin_idx_ = mapper.n_bins - 1
        mapper.is_categorical_ = np.zeros(X.shape[1], dtype=np.uint8)
        mapper.bin_thresholds_ = [np.arange(t, dtype=np.float64) + 0.5 for t in top]
        mapper.n_bins_non_missing_ = (top + 1).astype(np.uint32)
        return np.asfortranarray(X, dtype=np.uint8)
    # a validation code above the training rows' highest is that highest bin, as transform does
    return np.ascontiguousarray(np.minimum(X, mapper.n_bins_non_missing_ - 1), dtype=np.uint8)


@functools.cache
def trees(kind: str) -> type:
    """``HistGradientBoostingClassifier`` (``kind="classifier"``) or ``...Regressor`` reading
    :func:`bin_codes` without binning them again (the class is built once per kind)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    base = HistGradientBoostingClassifier if kind == "classifier" else HistGradientBoostingRegressor
    if not hasattr(base, "_bin_data"):
        return base

    class Prebinned(base):  # type: ignore[misc, valid-type]
        def _bin_data(self, X: np.ndarray, sample_weight: Any, is_training_data: bool) -> np.ndarray:
            return _identity_bins(self, X, is_training_data)

    Prebinned.__name__ = f"Prebinned{base.__name__}"
    return Prebinned
