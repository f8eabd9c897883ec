"""An interval for a metric over training seeds: test-set sampling and retraining variance together.

An arm trained with ``N`` seeds gives ``N`` estimates ``m_k`` of one metric on the same test set,
each with its own interval ``[lo_k, hi_k]`` (test-set sampling only).  The quantity reported is
the mean over seeds ``m̄`` (what the method does on average, not what one lucky seed did); its
error has two parts:

* **retraining**: ``s / sqrt(N)`` with ``s`` the sample SD of the ``m_k`` (``N - 1`` degrees of
  freedom).  Because every seed is scored on the same test rows, ``s`` measures training variance
  (plus the small part of test noise that differs between models), never less than it;
* **test sampling**: the largest of the seeds' half-widths on each side, ``a = max(m_k - lo_k)``
  (and ``max(hi_k - m_k)`` above).  The errors of the ``m_k`` share one test set, so they are
  strongly correlated; the SD of their mean is at most the mean of their SDs (Minkowski), and
  so at most the largest: ``a`` is an upper bound, whatever the correlation, and the interval
  is never narrower than any seed's own interval.

Each side combines the two as ``t_df * sqrt((a / z)^2 + s^2 / N)``, with ``z`` the normal quantile
the within-seed interval was built for and ``df`` the Welch–Satterthwaite degrees of freedom of
that sum (the test part counted as known).  So the within-seed interval's asymmetry (a
Clopper–Pearson interval near 1, a bias-corrected gap) is kept, and the interval equals the
seeds' own interval when every seed agrees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fairaudit.stats.special import t_quantile, z_quantile


@dataclass(frozen=True)
class SeedSummary:
    """A metric over ``n`` training seeds: mean, SD, and the interval described in the module."""

    n: int
    mean: float
    sd: float
    ci_low: float | None
    ci_high: float | None
    #: Welch–Satterthwaite degrees of freedom of each side (``inf`` when every seed agrees).
    df_low: float | None = None
    df_high: float | None = None


def summarise_seeds(values: Sequence[float], lows: Sequence[float | None], highs: Sequence[float | None],
                    ci_level: float = 0.95, support: tuple[float, float] | None = None) -> SeedSummary:
    """Mean, SD and interval over seeds of ``values`` whose within-seed intervals are ``lows``/``highs``.

    A side whose within-seed bound is missing for some seed counts the retraining part only.
    ``support`` (e.g. ``(0, 1)`` for an AUC, a rate or an unsigned gap) clips the interval to the
    values the metric can take.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) < 1 or not np.all(np.isfinite(v)):
        raise ValueError("summarise_seeds needs one finite value per seed")
    if len(lows) != len(v) or len(highs) != len(v):
        raise ValueError("one interval per seed is needed")
    n = len(v)
    if np.all(v == v[0]):  # a deterministic arm: exactly its value, no spread from rounding
        mean, sd = float(v[0]), 0.0
    else:
        mean, sd = float(v.mean()), float(v.std(ddof=1))
    alpha = 1.0 - ci_level
    z = z_quantile(1.0 - alpha / 2)
    low = _side(mean, sd, n, _half_widths(v, lows, below=True), z, alpha, sign=-1.0)
    high = _side(mean, sd, n, _half_widths(v, highs, below=False), z, alpha, sign=1.0)
    lo, hi = low[0], high[0]
    if support is not None:
        lo, hi = max(lo, support[0]), min(hi, support[1])
    return SeedSummary(n=n, mean=mean, sd=sd, ci_low=lo, ci_high=hi, df_low=low[1], df_high=high[1])


def _half_widths(v: np.ndarray, bounds: Sequence[float | None], *, below: bool) -> float:
    """The largest within-seed half-width on one side (0 when a seed has no bound there)."""
    if any(b is None or not math.isfinite(float(b)) for b in bounds):
        return 0.0
    b = np.asarray(bounds, dtype=np.float64)
    widths = (v - b) if below else (b - v)
    return float(np.clip(widths, 0.0, None).max())


def _side(mean: float, sd: float, n: int, half: float, z: float, alpha: float,
          sign: float) -> tuple[float, float]:
    """One bound and its degrees of freedom."""
    test_var = (half / z) ** 2
    seed_var = sd**2 / n if n > 1 else 0.0
    total = test_var + seed_var
    if total == 0.0:
        return mean, math.inf
    df = math.inf if seed_var == 0.0 else total**2 / (seed_var**2 / (n - 1))
    q = z if math.isinf(df) else float(t_quantile(alpha / 2, np.array([df]))[0])
    return mean + sign * q * math.sqrt(total), df
