"""Multiple-testing control across a report's tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (step-up FDR control), in the input order.

    ``p_adj[(i)] = min_{j >= i} min(1, m p_(j) / j)`` over the sorted p-values; this equals
    ``scipy.stats.false_discovery_control(p, method="bh")``.  NaN entries stay NaN and do not
    count towards ``m``.
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    out = np.full(p.shape, np.nan)
    valid = ~np.isnan(p)
    if not valid.any():
        return out
    pv = p[valid]
    if np.any((pv < 0) | (pv > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = len(pv)
    order = np.argsort(pv, kind="stable")
    scaled = pv[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    res = np.empty(m)
    res[order] = adjusted
    out[valid] = res
    return out
