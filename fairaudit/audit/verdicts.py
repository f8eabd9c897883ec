"""Judging declared thresholds and adjusting p-values across a report's tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from fairaudit.results import ArmResult, Verdict

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


def judge_all(arms: list[ArmResult], thresholds: Mapping[str, Threshold]) -> list[Verdict]:
    """One verdict per (threshold, arm, attribute) using the CI: pass, fail, inconclusive or too small."""
    from fairaudit.stats import judge_threshold

    verdicts: list[Verdict] = []
    for metric_name, rule in thresholds.items():
        for arm in arms:
            if rule.arms is not None and arm.name not in rule.arms:
                continue
            if arm.status != "ok":
                continue
            found = [m for m in arm.metrics if m.metric == metric_name
                     and (rule.attribute is None or m.attribute == rule.attribute)]
            if not found:
                verdicts.append(Verdict(arm=arm.name, metric=metric_name, attribute=rule.attribute,
                                        min=rule.min, max=rule.max, value=None, ci_low=None, ci_high=None,
                                        outcome="missing",
                                        reason="no such metric was computed for this arm; add the metric "
                                               "plugin that produces it"))
                continue
            for m in found:
                too_small = m.status == "too_small"
                outcome = judge_threshold(m.value, m.ci_low, m.ci_high, min=rule.min, max=rule.max,
                                          too_small=too_small)
                verdicts.append(Verdict(arm=arm.name, metric=metric_name, attribute=m.attribute,
                                        min=rule.min, max=rule.max, value=m.value, ci_low=m.ci_low,
                                        ci_high=m.ci_high, outcome=outcome, reason=_reason(outcome)))
    return verdicts


def _reason(outcome: str) -> str:
    return {
        "pass": "the whole confidence interval lies within the threshold",
        "fail": "the whole confidence interval lies outside the threshold",
        "inconclusive": "the confidence interval straddles the threshold",
        "too_small": "groups too small to judge; no verdict",
    }.get(outcome, "")
