"""Judge a declared threshold with the confidence interval in view.

The rule (its error rates are measured by ``benchmarks/bench_coverage.py``):

* **fail** only when the whole interval lies outside the allowed range, *and*, for a gap or a
  ratio between groups, the report's permutation test (adjusted for multiple testing) rejects
  equal groups at ``alpha = 1 − ci_level``;
* **pass** only when the whole interval lies inside the allowed range;
* **inconclusive** otherwise (the interval straddles a bound, or the interval says "above the
  bound" while the adjusted test cannot tell the groups apart: the gap may be noise among the
  report's many tests);
* **too_small** when fewer than two groups have enough events to judge.

The interval and the test answer different questions: the interval bounds *how large* the gap
is; the test asks *whether there is any gap*, across all of the report's tests.  A FAIL claims
both (a real gap, larger than allowed), so it needs both; a PASS ("smaller than allowed") can
stand beside a significant test (a real but small gap), and the reason says so.
"""

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
    *,
    p_value: float | None = None,
    alpha: float = 0.05,
) -> Outcome:
    """``pass`` / ``fail`` / ``inconclusive`` / ``too_small`` for a threshold ``[min, max]``.

    * ``too_small``: the groups are too small to judge (no verdict).
    * ``pass``: the whole CI lies within the allowed range.
    * ``fail``: the whole CI lies outside it (entirely above ``max`` or below ``min``) and, when
      ``p_value`` is given (the adjusted permutation p of "the groups differ"), ``p_value < alpha``.
    * ``inconclusive``: the CI straddles a bound, the test does not confirm a failing CI, or
      there is no value.

    Without a CI (``n_boot = 0``) the point value stands in for both bounds.
    """
    if min is None and max is None:
        raise ValueError("a threshold needs min and/or max")
    if too_small:
        return "too_small"
    if _missing(value):
        return "inconclusive"
    low, high = (value if _missing(ci_low) else ci_low), (value if _missing(ci_high) else ci_high)
    if _outside(low, high, min, max):  # type: ignore[arg-type]
        return "inconclusive" if p_value is not None and not p_value < alpha else "fail"
    return "pass" if _inside(low, high, min, max) else "inconclusive"  # type: ignore[arg-type]


def _outside(low: float, high: float, min: float | None, max: float | None) -> bool:
    """The whole interval lies above ``max`` or below ``min``."""
    return (max is not None and low > max) or (min is not None and high < min)


def _inside(low: float, high: float, min: float | None, max: float | None) -> bool:
    """The whole interval lies within ``[min, max]``."""
    return (max is None or high <= max) and (min is None or low >= min)


def _fmt(x: float | None) -> str:
    return "–" if _missing(x) else f"{x:.3g}"


def explain(
    outcome: str,
    ci_low: float | None,
    ci_high: float | None,
    *,
    p_value: float | None = None,
    alpha: float = 0.05,
    outside: bool = False,
    excluded: list[dict[str, str]] | None = None,
) -> str:
    """The verdict's ``reason``: what the interval and (when there is one) the test said.

    ``outside``: the whole interval lies outside the threshold (so an ``inconclusive`` came from
    the test); ``excluded``: the groups left out and why (for ``too_small``).
    """
    ci = f"[{_fmt(ci_low)}, {_fmt(ci_high)}]" if not (_missing(ci_low) or _missing(ci_high)) else "(no interval)"
    significant = p_value is not None and p_value < alpha
    p = f"adjusted permutation p = {_fmt(p_value)}"
    if outcome == "too_small":
        why = "; ".join(f"{e['group']!r}: {e['reason']}" for e in excluded or [])
        return "fewer than two groups have enough events to judge; no verdict" + (f" ({why})" if why else "")
    if outcome == "fail":
        text = f"the whole interval {ci} lies outside the threshold"
        return text + (f", and the groups differ ({p} < {alpha:g})" if p_value is not None else "")
    if outcome == "pass":
        return f"the whole interval {ci} lies within the threshold" + (
            f"; the groups do differ ({p}), but by less than the bound allows" if significant else "")
    if outcome == "inconclusive":
        return _inconclusive(ci, p, alpha, outside=outside and p_value is not None, significant=significant)
    return ""


def _inconclusive(ci: str, p: str, alpha: float, *, outside: bool, significant: bool) -> str:
    """Why a verdict is inconclusive: the test did not confirm an interval beyond the bound, the
    interval straddles the bound, or there is nothing to judge."""
    if outside:
        return (
            f"the interval {ci} lies outside the threshold, but the permutation test does not "
            f"tell the groups apart after adjusting for the report's tests ({p} >= {alpha:g}): "
            "the gap may be noise, so no FAIL"
        )
    if ci == "(no interval)":
        return "no value to judge"
    text = f"the interval {ci} straddles the threshold"
    if significant:
        text += f"; the groups differ ({p}) but the data cannot tell whether by more than allowed"
    return text
