"""Executive summary and cross-arm comparison: verdicts, largest gaps, mitigation table, figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fairaudit.report import figures
from fairaudit.report.arms import PROBE_METRICS, attribute_order, forest_rows, is_gap, probe_kind
from fairaudit.report.blocks import FigureSink
from fairaudit.report.fmt import ci, is_finite, metric_label, num, pval
from fairaudit.results import ArmResult, AuditResult, MetricResult, Verdict

OUTCOME_LABELS = {
    "pass": "PASS",
    "fail": "FAIL",
    "inconclusive": "INCONCLUSIVE",
    "too_small": "NO VERDICT",
    "missing": "MISSING",
}
TOP_GAPS = 5


def bound_text(v: Verdict) -> str:
    if v.min is not None and v.max is not None:
        return f"between {num(v.min)} and {num(v.max)}"
    if v.max is not None:
        return f"≤ {num(v.max)}"
    if v.min is not None:
        return f"≥ {num(v.min)}"
    return "–"


def verdicts(result: AuditResult) -> dict[str, Any]:
    """Verdict rows grouped by declared threshold, with counts and a one-line headline."""
    rows = []
    for v in result.verdicts:
        rows.append(
            {
                "metric": metric_label(v.metric),
                "bound": bound_text(v),
                "arm": v.arm,
                "attribute": v.attribute or "all",
                "outcome": v.outcome,
                "outcome_label": OUTCOME_LABELS.get(v.outcome, v.outcome.upper()),
                "value": num(v.value) if v.outcome not in ("too_small", "missing") else "–",
                "ci": ci(v.ci_low, v.ci_high) if v.outcome not in ("too_small", "missing") else "",
                "reason": v.reason,
            }
        )
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["metric"], row["bound"]), []).append(row)
    counts = {k: sum(v.outcome == k for v in result.verdicts) for k in OUTCOME_LABELS}
    if not result.verdicts:
        headline, tone = (
            (
                "No thresholds were declared in the spec: this report describes the gaps "
                "but does not judge them."
            ),
            "neutral",
        )
    elif counts["fail"]:
        headline, tone = (
            (
                f"{counts['fail']} of {len(result.verdicts)} threshold checks FAIL "
                "(the whole confidence interval is outside the declared bound)."
            ),
            "fail",
        )
    elif counts["inconclusive"]:
        headline, tone = (
            (
                f"No check fails, but {counts['inconclusive']} of {len(result.verdicts)} are "
                "INCONCLUSIVE (the confidence interval straddles the bound)."
            ),
            "inconclusive",
        )
    elif counts["pass"] == len(result.verdicts):
        headline, tone = (
            "Every declared threshold check passes, with the whole CI within the bound.",
            "pass",
        )
    else:
        headline, tone = (
            ("No check fails, but some could not be judged (groups too small or metrics missing)."),
            "inconclusive",
        )
    return {
        "rows": rows,
        "counts": counts,
        "headline": headline,
        "tone": tone,
        "groups": [{"metric": m, "bound": b, "rows": r} for (m, b), r in groups.items()],
    }


def largest_gaps(result: AuditResult) -> list[dict[str, Any]]:
    """The baseline's (or first successful arm's) clearest group gaps.

    Ranked by the lower end of the interval (a conservative size), so a wide interval around a
    large point estimate on a tiny group does not crowd out a well-estimated gap.
    """
    arm = result.arm("baseline")
    if arm is None or arm.status != "ok":
        arm = next((a for a in result.arms if a.status == "ok"), None)
    if arm is None:
        return []
    gaps = [m for m in arm.metrics if is_gap(m.metric) and m.status == "ok" and is_finite(m.value)]

    def strength(m: Any) -> tuple[float, float]:
        value = abs(float(m.value))
        if is_finite(m.ci_low) and is_finite(m.ci_high):
            low, high = sorted((float(m.ci_low), float(m.ci_high)))
            return (0.0 if low <= 0 <= high else min(abs(low), abs(high))), value
        return value, value

    gaps.sort(key=strength, reverse=True)
    return [
        {
            "arm": arm.name,
            "metric": metric_label(m.metric, m.label),
            "attribute": m.attribute or "all",
            "value": num(m.value),
            "ci": ci(m.ci_low, m.ci_high),
            "p_adj": pval(m.p_adjusted),
        }
        for m in gaps[:TOP_GAPS]
    ]


# ---------------------------------------------------------------- mitigation comparison
Getter = Callable[[ArmResult], "tuple[float | None, float | None, float | None, str] | None"]


@dataclass
class KeyMetric:
    label: str
    get: Getter
    better: str  # "higher", "lower" (absolute value) or "chance" (closer to 0.5)
    paired: tuple[str, str | None] | None = None  # (metric, attribute) in ArmResult.versus_baseline


def _paired_change(arm: ArmResult, key: KeyMetric, delta: float) -> MetricResult | None:
    """The arm's paired change from the baseline for ``key``, with a finite interval, when one
    was computed for exactly the displayed ``delta`` (not, say, on other groups)."""
    if key.paired is None:
        return None
    for m in arm.versus_baseline:
        if (m.metric, m.attribute) == key.paired and is_finite(m.value):
            same = abs(float(m.value) - delta) <= 1e-9  # type: ignore[arg-type]
            return m if same and is_finite(m.ci_low) and is_finite(m.ci_high) else None
    return None


def _metric_getter(name: str, attribute: str | None) -> Getter:
    def get(arm: ArmResult) -> tuple[float | None, float | None, float | None, str] | None:
        for m in arm.metrics:
            if (
                m.metric == name
                and (attribute is None or m.attribute == attribute)
                and m.status == "ok"
                and is_finite(m.value)
            ):
                return m.value, m.ci_low, m.ci_high, ""
        return None

    return get


def _worst_group_auc(arm: ArmResult) -> tuple[float | None, float | None, float | None, str] | None:
    """The lowest group AUC (``worst_group_auc`` results, else the ``roc_auc`` group values)."""
    candidates: list[tuple[float, float | None, float | None, str]] = []
    for m in arm.metrics:
        if m.metric == "worst_group_auc" and m.status == "ok" and is_finite(m.value):
            group = m.details.get("group")
            where = f"{m.attribute} = {group}" if group is not None else str(m.attribute or "")
            candidates.append((float(m.value), m.ci_low, m.ci_high, where))  # type: ignore[arg-type]
    if not candidates:
        for m in arm.metrics:
            if m.metric != "roc_auc":
                continue
            for g in m.per_group:
                if not g.too_small and is_finite(g.value):
                    candidates.append(
                        (
                            float(g.value),
                            g.ci_low,
                            g.ci_high,  # type: ignore[arg-type]
                            f"{g.attribute} = {g.group}",
                        )
                    )
    return min(candidates, key=lambda c: c[0], default=None)


def _probe_getter(attribute: str) -> Getter:
    """The attribute's probe AUC, preferring the linear probe when several were fitted."""

    def get(arm: ArmResult) -> tuple[float | None, float | None, float | None, str] | None:
        found = [
            m
            for m in arm.metrics
            if m.metric == PROBE_METRICS[0]
            and m.attribute == attribute
            and m.status == "ok"
            and is_finite(m.value)
        ]
        found.sort(key=lambda m: probe_kind(m) != "linear")
        if not found:
            return None
        m = found[0]
        return m.value, m.ci_low, m.ci_high, f"{probe_kind(m)} probe" if probe_kind(m) else ""

    return get


def key_metrics(result: AuditResult) -> list[KeyMetric]:
    """Rows of the mitigation comparison: task AUC, worst-group AUC, EOD, probe AUC and the
    counterfactual decision-flip rates (shortcut reliance)."""
    ok = [a for a in result.arms if a.status == "ok"]
    metrics = [m for a in ok for m in a.metrics]
    out = [
        KeyMetric("Task AUC", _metric_getter("roc_auc", None), "higher", ("roc_auc", None)),
        KeyMetric("Worst-group AUC", _worst_group_auc, "higher", ("worst_group_auc", None)),
    ]
    eod = [m for m in metrics if m.metric == "equal_opportunity_difference"]
    for attribute in attribute_order(result, eod):
        out.append(
            KeyMetric(
                f"EOD ({attribute})",
                _metric_getter("equal_opportunity_difference", attribute),
                "lower",
                ("equal_opportunity_difference", attribute),
            )
        )
    probes = [m for m in metrics if m.metric == PROBE_METRICS[0]]
    for attribute in attribute_order(result, probes):
        out.append(KeyMetric(f"Probe AUC ({attribute})", _probe_getter(attribute), "chance"))
    for name in sorted({m.metric for m in metrics if m.metric.startswith(SENSITIVITY_PREFIX)}):
        factor = name.removeprefix(SENSITIVITY_PREFIX)
        attrs = attribute_order(result, [m for m in metrics if m.metric == name])
        if attrs:  # the overall flip rate is the same under every attribute: take the first
            out.append(KeyMetric(f"Decision flips ({factor} flipped)", _metric_getter(name, attrs[0]),
                                 "higher" if factor == "disease" else "lower"))
    return [k for k in out if any(k.get(a) is not None for a in ok)]


#: Results of the ``counterfactual_sensitivity`` metric: ``cf_sensitivity_<factor>``.
SENSITIVITY_PREFIX = "cf_sensitivity_"


def _score(value: float, better: str) -> float:
    """Larger is better."""
    if better == "higher":
        return value
    if better == "lower":
        return -abs(value)
    return -abs(value - 0.5)


ARMS_PER_TABLE = 4


def comparison(result: AuditResult) -> dict[str, Any]:
    """Key metrics (rows) × arms (columns, chunked), each cell with its change from the baseline."""
    keys = key_metrics(result)
    base = result.arm("baseline")
    ref_arm = base if base is not None and base.status == "ok" else None
    columns = [
        {"arm": a.name, "kind": a.kind, "failed": a.status == "failed", "error": a.error or ""}
        for a in result.arms
    ]
    rows = []
    for k in keys:
        ref = k.get(ref_arm) if ref_arm is not None else None
        cells = []
        for arm in result.arms:
            got = k.get(arm) if arm.status == "ok" else None
            if got is None:
                cells.append(
                    {
                        "value": "–",
                        "ci": "",
                        "delta": "",
                        "delta_ci": "",
                        "paired": False,
                        "trend": "",
                        "note": "",
                        "beyond_noise": False,
                        "failed": arm.status == "failed",
                    }
                )
                continue
            value, low, high = got[0], got[1], got[2]
            cell = {
                "value": num(value),
                "ci": ci(low, high),
                "delta": "",
                "delta_ci": "",
                "paired": False,
                "trend": "",
                "note": got[3],
                "beyond_noise": False,
                "failed": False,
            }
            if arm is not ref_arm and ref is not None and is_finite(ref[0]) and is_finite(value):
                delta = float(value) - float(ref[0])  # type: ignore[arg-type]
                cell["delta"] = ("+" if delta > 0 else "") + num(delta)
                diff = _score(float(value), k.better) - _score(float(ref[0]), k.better)  # type: ignore[arg-type]
                cell["trend"] = "better" if diff > 1e-9 else "worse" if diff < -1e-9 else ""
                change = _paired_change(arm, k, delta)
                if change is not None:
                    cell["delta_ci"] = ci(change.ci_low, change.ci_high)
                    cell["beyond_noise"] = bool(change.details.get("excludes_zero"))
                    cell["paired"] = True
                else:  # no paired change for this row: does the arm's interval exclude the baseline?
                    cell["beyond_noise"] = (
                        is_finite(low)
                        and is_finite(high)
                        and not (min(low, high) <= ref[0] <= max(low, high))
                    )  # type: ignore[type-var]
            cells.append(cell)
        rows.append({"label": k.label, "cells": cells})
    chunks = []
    for start in range(0, len(columns), ARMS_PER_TABLE):
        stop = start + ARMS_PER_TABLE
        chunks.append(
            {
                "columns": columns[start:stop],
                "rows": [{"label": r["label"], "cells": r["cells"][start:stop]} for r in rows],
            }
        )
    failed = [f"{a.name}: {a.error or 'failed'}" for a in result.arms if a.status == "failed"]
    flips = any(r["label"].startswith("Decision flips") for r in rows)
    paired = any(c.get("paired") for r in rows for c in r["cells"])
    return {"chunks": chunks if rows else [], "has_baseline": ref_arm is not None, "failed": failed,
            "has_flips": flips, "has_paired": paired}


def changes(result: AuditResult) -> list[dict[str, Any]]:
    """Per mitigation: what moved against the baseline (key metrics and threshold outcomes)."""
    base = result.arm("baseline")
    keys = key_metrics(result)
    out = []
    for arm in result.arms:
        if arm is base:
            continue
        entry: dict[str, Any] = {
            "arm": arm.name,
            "kind": arm.kind,
            "failed": arm.status == "failed",
            "error": arm.error or "",
            "moves": [],
            "verdicts": [],
        }
        if arm.status == "ok" and base is not None and base.status == "ok":
            for k in keys:
                a, b = k.get(base), k.get(arm)
                if a is None or b is None or not (is_finite(a[0]) and is_finite(b[0])):
                    continue
                delta = float(b[0]) - float(a[0])  # type: ignore[arg-type]
                change = _paired_change(arm, k, delta)
                interval = f", paired CI {ci(change.ci_low, change.ci_high)}" if change is not None else ""
                entry["moves"].append(
                    f"{k.label}: {num(a[0])} → {num(b[0])} ({'+' if delta > 0 else ''}{num(delta)}{interval})"
                )
            before = {
                (v.metric, v.attribute): v.outcome for v in result.verdicts if v.arm == base.name
            }
            for v in result.verdicts:
                if v.arm != arm.name:
                    continue
                old = before.get((v.metric, v.attribute))
                if old is not None and old != v.outcome:
                    entry["verdicts"].append(
                        f"{metric_label(v.metric)} ({v.attribute or 'all'}): "
                        f"{OUTCOME_LABELS.get(old, old)} → "
                        f"{OUTCOME_LABELS.get(v.outcome, v.outcome)}"
                    )
        out.append(entry)
    return out


# ---------------------------------------------------------------- cross-arm figures
def cross_figures(result: AuditResult, sink: FigureSink) -> dict[str, list[dict[str, Any]]]:
    """Forest plots per attribute, probe bars and bias-attack curves across every successful arm."""
    ok = [a for a in result.arms if a.status == "ok"]
    names = [a.name for a in ok]
    out: dict[str, list[dict[str, Any]]] = {"forest": [], "probes": [], "attacks": []}
    gap_metrics = [m for a in ok for m in a.metrics if is_gap(m.metric)]
    for attribute in attribute_order(result, gap_metrics):
        rows = forest_rows(result, ok, attribute)
        if rows:
            svg = figures.forest_figure(rows, names, title=f"Gaps by {attribute}, every arm")
            out["forest"].append(sink.add(f"compare-forest-{attribute}", svg))
    for probe in PROBE_METRICS:
        bars = [
            figures.ProbeBar(
                f"{m.attribute or 'all'} ({probe_kind(m)})"
                if probe_kind(m)
                else m.attribute or "all",
                a.name,
                m.value,
                m.ci_low,
                m.ci_high,
                m.details.get("shuffled_auc") if is_finite(m.details.get("shuffled_auc")) else None,
            )
            for a in ok
            for m in a.metrics
            if m.metric == probe and m.status == "ok"
        ]
        if bars:
            arms = [n for n in names if any(b.arm == n for b in bars)]
            svg = figures.probe_figure(bars, arms, title=metric_label(probe) + " by arm")
            out["probes"].append(
                sink.add(
                    f"compare-{probe}",
                    svg,
                    caption=(
                        "Bars: probe AUC on the test split with its CI; dotted ticks: the same "
                        "probe trained on shuffled attribute labels (what chance looks like for "
                        "this probe); dashed line: 0.5."
                    ),
                )
            )
    panels: dict[tuple[str, str], list[figures.AttackSeries]] = {}
    for a in ok:
        for m in a.metrics:
            if m.metric != "bias_attack_eod" or m.status != "ok":
                continue
            d = m.details
            key = (m.attribute or "all", str(d.get("flipped_group", "")))
            panels.setdefault(key, []).append(
                figures.AttackSeries(
                    a.name,
                    list(d.get("fractions") or []),
                    list(d.get("eod") or []),
                    list(d.get("eod_ci_low") or []),
                    list(d.get("eod_ci_high") or []),
                )
            )
    for (attribute, flipped), series in panels.items():
        title = f"Bias attack on {attribute}" + (
            f" (labels flipped in '{flipped}')" if flipped else ""
        )
        svg = figures.bias_attack_figure(series, title=figures.short(title, 60))
        out["attacks"].append(sink.add(f"compare-attack-{attribute}-{flipped}", svg))
    return out
