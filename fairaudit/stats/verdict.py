"""Judge a declared threshold with the confidence interval in view."""

from __future__ import annotations

import math
from typing import Literal

Outcome = Literal["pass", "fail", "inconclusive", "too_small"]


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def judge_threshold(
    value: float | None,
    ci_low: float | None,
    ci_high: float | None,
    min: float | None = None,
    max: float | None = None,
    too_small: bool = False,
) -> Outcome:
    """``pass`` / ``fail`` / ``inconclusive`` / ``too_small`` for a threshold ``[min, max]``.

    * ``too_small``: the groups are too small to judge (no verdict).
    * ``pass``: the whole CI lies within the allowed range.
    * ``fail``: the whole CI lies outside it (entirely above ``max`` or below ``min``).
    * ``inconclusive``: the CI straddles a bound, or there is no value.

    Without a CI (``n_boot = 0``) the point value stands in for both bounds.
    """
    if min is None and max is None:
        raise ValueError("a threshold needs min and/or max")
    if too_small:
        return "too_small"
    if _missing(value):
        return "inconclusive"
    low = value if _missing(ci_low) else ci_low
    high = value if _missing(ci_high) else ci_high
    assert low is not None and high is not None
    if (max is not None and low > max) or (min is not None and high < min):
        return "fail"
    if (max is None or high <= max) and (min is None or low >= min):
        return "pass"
    return "inconclusive"
