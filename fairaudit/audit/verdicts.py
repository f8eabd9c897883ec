"""Judging declared thresholds and adjusting p-values across a report's tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from fairaudit.results import ArmResult, MetricResult, Verdict

if TYPE_CHECKING:
    from fairaudit.spec.models import Threshold


def adjust_p_values(arms: list[ArmResult], method: str = "bh") -> int:
    """Fill ``p_adjusted`` of every metric with a p-value (Benjamini–Hochberg across the report)."""
    from fairaudit.stats import benjamini_hochberg

    with_p = [m for arm in arms for m in arm.metrics if m.p_value is not None]
    if not with_p:
        return 0
    raw = np.array([m.p_value for m in with_p], dtype=float)
    adjusted = benjamini_hochberg(raw) if method == "bh" else raw
    for metric, value in zip(with_p, adjusted, strict=True):
        metric.p_adjusted = float(value)
    return len(with_p)


def _is_overall(found: list[MetricResult]) -> bool:
    """One value over every test sample (declared role ``value``), repeated under each attribute:
    judge it once.  The repeats must agree."""
    return all(m.role == "value" for m in found) and len({m.estimate()[0] for m in found}) == 1


def _test_of(m: MetricResult, arm: ArmResult) -> float | None:
    """The (adjusted when available) permutation p of "the groups differ" behind a gap or ratio."""
    source = m
    sibling = m.details.get("tested_by")
    if m.p_value is None and sibling:
        source = next((x for x in arm.metrics if x.metric == sibling and x.attribute == m.attribute), m)
    return source.p_adjusted if source.p_adjusted is not None else source.p_value


def judge_all(
    arms: list[ArmResult], thresholds: Mapping[str, Threshold], ci_level: float = 0.95
) -> list[Verdict]:
    """One verdict per (threshold, arm, attribute): pass, fail, inconclusive or too small.

    A FAIL on a gap (above ``max``) or a ratio (below ``min``) needs the interval outside the
    threshold *and* the permutation test (BH-adjusted) rejecting equal groups at
    ``1 − ci_level``; see :mod:`fairaudit.stats.verdict`.  An overall metric (the same value
    under every attribute, e.g. ``roc_auc``) is judged once, with ``attribute=None``.
    """
    verdicts: list[Verdict] = []
    for metric_name, rule in thresholds.items():
        for arm in arms:
            if arm.status != "ok" or (rule.arms is not None and arm.name not in rule.arms):
                continue
            found = [m for m in arm.metrics if m.metric == metric_name
                     and (rule.attribute is None or m.attribute == rule.attribute)]
            if not found:
                verdicts.append(_missing_verdict(arm, metric_name, rule))
                continue
            once = _is_overall(found)
            verdicts += [_judge(arm, m, rule, 1.0 - ci_level, once) for m in (found[:1] if once else found)]
    return verdicts


def _missing_verdict(arm: ArmResult, metric_name: str, rule: Threshold) -> Verdict:
    return Verdict(arm=arm.name, metric=metric_name, attribute=rule.attribute, min=rule.min, max=rule.max,
                   value=None, ci_low=None, ci_high=None, outcome="missing",
                   reason="no such metric was computed for this arm; add the metric plugin that produces it")


def _judge(arm: ArmResult, m: MetricResult, rule: Threshold, alpha: float, once: bool) -> Verdict:
    """One result against one threshold (an overall value is judged once: ``attribute`` None)."""
    from fairaudit.stats.verdict import explain, judge_threshold

    value, ci_low, ci_high = m.estimate()  # over training seeds when the arm was repeated
    low = value if ci_low is None else ci_low
    high = value if ci_high is None else ci_high
    above = rule.max is not None and low is not None and low > rule.max
    below = rule.min is not None and high is not None and high < rule.min
    # the permutation test concerns disparity: a gap above max, a ratio below min
    disparity = (above and m.higher_is_better is False) or (below and m.higher_is_better is True)
    p = _test_of(m, arm) if disparity and not once else None
    outcome = judge_threshold(value, ci_low, ci_high, min=rule.min, max=rule.max,
                              too_small=m.status == "too_small", p_value=p, alpha=alpha)
    reason = explain(outcome, ci_low, ci_high, p_value=p if p is not None else _test_of(m, arm),
                     alpha=alpha, outside=above or below, excluded=m.details.get("excluded"))
    if m.over_seeds is not None:
        reason += (f" (mean over {m.over_seeds.n} training seeds; the interval includes retraining variance; "
                   "the permutation test is of the first seed's model)")
    return Verdict(arm=arm.name, metric=m.metric, attribute=None if once else m.attribute, min=rule.min,
                   max=rule.max, value=value, ci_low=ci_low, ci_high=ci_high, outcome=outcome, reason=reason)
