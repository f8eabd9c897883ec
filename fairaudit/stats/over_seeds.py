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
    below = _half_widths(v, lows, below=True)
    above = _half_widths(v, highs, below=False)
    mean, sd, low, high, df_low, df_high = seed_intervals(v[None, :], np.array([below]), np.array([above]),
                                                          ci_level=ci_level, support=support)
    if np.all(v == v[0]):  # a deterministic arm: exactly its value, no spread from rounding
        mean, sd = np.array([v[0]]), np.array([0.0])
    return SeedSummary(n=len(v), mean=float(mean[0]), sd=float(sd[0]), ci_low=float(low[0]),
                       ci_high=float(high[0]), df_low=float(df_low[0]), df_high=float(df_high[0]))


def seed_intervals(values: np.ndarray, below: np.ndarray, above: np.ndarray, ci_level: float = 0.95,
                   support: tuple[float, float] | None = None) -> tuple[np.ndarray, ...]:
    """The intervals of many metrics at once: ``values`` is ``(metrics, seeds)``, ``below`` and
    ``above`` the test-sampling half-widths of each metric (one per row).  Returns mean, SD, low,
    high and the two sides' degrees of freedom, one per row."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[1]
    mean = values.mean(axis=1)
    sd = values.std(axis=1, ddof=1) if n > 1 else np.zeros(len(values))
    alpha = 1.0 - ci_level
    z = z_quantile(1.0 - alpha / 2)
    low, df_low = _sides(sd, n, np.asarray(below, dtype=np.float64), z, alpha)
    high, df_high = _sides(sd, n, np.asarray(above, dtype=np.float64), z, alpha)
    low, high = mean - low, mean + high
    if support is not None:
        low, high = np.maximum(low, support[0]), np.minimum(high, support[1])
    return mean, sd, low, high, df_low, df_high


def _half_widths(v: np.ndarray, bounds: Sequence[float | None], *, below: bool) -> float:
    """The largest within-seed half-width on one side (0 when a seed has no bound there)."""
    if any(b is None or not math.isfinite(float(b)) for b in bounds):
        return 0.0
    b = np.asarray(bounds, dtype=np.float64)
    widths = (v - b) if below else (b - v)
    return float(np.clip(widths, 0.0, None).max())


def _sides(sd: np.ndarray, n: int, half: np.ndarray, z: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Each row's half-width on one side, and its Welch–Satterthwaite degrees of freedom."""
    test_var = (half / z) ** 2
    seed_var = sd**2 / n if n > 1 else np.zeros_like(sd)
    total = test_var + seed_var
    df = np.full(len(sd), np.inf)
    spread = seed_var > 0
    df[spread] = total[spread] ** 2 / (seed_var[spread] ** 2 / (n - 1))
    q = np.full(len(sd), z)
    if spread.any():
        q[spread] = t_quantile(alpha / 2, df[spread])
    return q * np.sqrt(total), df
