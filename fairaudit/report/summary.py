"""Executive summary and cross-arm comparison: verdicts, largest gaps, mitigation table, figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fairaudit.report import figures
from fairaudit.report.arms import attribute_order, forest_rows, is_gap, probe_kind
from fairaudit.report.blocks import FigureSink
from fairaudit.report.fmt import ci, is_finite, metric_label, num, pval, short_label
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
    """The reference arm's (baseline's, or first successful arm's) clearest group gaps.

    Ranked by the lower end of the interval (a conservative size), so a wide interval around a
    large point estimate on a tiny group does not crowd out a well-estimated gap.
    """
    arm = result.reference()
    if arm is None:
        arm = next((a for a in result.arms if a.status == "ok"), None)
    if arm is None:
        return []
    gaps = [m for m in arm.metrics if is_gap(m) and m.status == "ok" and is_finite(m.value)]

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


# ---------------------------------------------------------------- can the report be read?
#: The task's discrimination (a value over every sample, 0.5 = chance) and the group level below
#: which a model is considered near chance for that group.
TASK_AUC, GROUP_AUC_FLOOR = "roc_auc", 0.6


def _near_chance(arm: ArmResult) -> str | None:
    """Why ``arm``'s model is near chance, or ``None``."""
    aucs = [m for m in arm.metrics if m.metric == TASK_AUC and m.role == "value"]
    auc = next((m for m in aucs if _ok(m)), None)
    if auc is None:
        return None
    if is_finite(auc.ci_low) and is_finite(auc.ci_high) and auc.ci_low <= 0.5 <= auc.ci_high:  # type: ignore[operator]
        return f"{arm.name}: task AUC {num(auc.value)} {ci(auc.ci_low, auc.ci_high)} includes 0.5"
    weak = _weakest_group(aucs)
    return None if weak is None else f"{arm.name}: AUC {num(weak[0])} in group {weak[1]} (below {GROUP_AUC_FLOOR:g})"


def _weakest_group(aucs: list[MetricResult]) -> tuple[float, str] | None:
    """The lowest judged group AUC below :data:`GROUP_AUC_FLOOR` and its group, if any."""
    weak = [(float(g.value), f"{g.attribute} = {g.group}") for m in aucs for g in m.per_group  # type: ignore[arg-type]
            if not g.too_small and is_finite(g.value) and g.value < GROUP_AUC_FLOOR]  # type: ignore[operator]
    return min(weak) if weak else None


def near_chance(result: AuditResult) -> list[str]:
    """Why some arm's model is near chance: its task AUC interval includes 0.5, or a group large
    enough to judge has an AUC below :data:`GROUP_AUC_FLOOR`.  Gaps between groups of a model
    that barely discriminates are not fairness findings."""
    return [reason for arm in comparable_arms(result) if (reason := _near_chance(arm)) is not None]


# ---------------------------------------------------------------- mitigation comparison
class Estimate(tuple):
    """(value, CI low, CI high, note) of one arm's key figure, with ``spread`` (``± SD over N
    seeds`` when the arm was trained N > 1 times, else empty) as an attribute."""

    spread: str

    def __new__(cls, value: float, low: float | None, high: float | None, note: str = "",
                spread: str = "") -> Estimate:
        obj = super().__new__(cls, (value, low, high, note))
        obj.spread = spread
        return obj


Getter = Callable[[ArmResult], "Estimate | None"]
#: Order of the comparison's rows within one metric plugin.
ROLE_ORDER = {"value": 0, "worst_group": 1, "gap": 2, "ratio": 3, "probe": 4, "attack": 5}


@dataclass
class KeyMetric:
    """One row of the mitigation comparison, built from results declared ``headline``."""

    label: str
    get: Getter
    better: str  # "higher", "lower" (absolute value), "chance" (closer to 0.5), "parity" (closer to 1), ""
    #: (derived_from, attribute) of the arm's ``change`` results in ``versus_baseline``
    paired: tuple[str, str | None] | None = None
    #: The metric plugin whose results the row shows.
    plugin: str = ""


def _ok(m: MetricResult) -> bool:
    return m.status == "ok" and is_finite(m.value)


def _estimate(m: MetricResult, note: str = "") -> Estimate:
    """The figure a table shows: over training seeds (mean, interval with retraining variance,
    spread) when the arm was repeated, else the single run's value and interval."""
    value, low, high = m.estimate()
    seeds = m.over_seeds
    spread = f"± {num(seeds.sd)} SD over {seeds.n} seeds" if seeds is not None else ""
    return Estimate(float(value), low, high, note, spread)  # type: ignore[arg-type]


def _value(m: MetricResult) -> float:
    return float(m.estimate()[0])  # type: ignore[arg-type]


def _paired_change(arm: ArmResult, key: KeyMetric, delta: float, versus: str | None = None) -> MetricResult | None:
    """The arm's paired change from the baseline (from the arm ``versus`` when given: its
    ``compare_with``) for ``key``, with a finite interval, when one was computed for exactly the
    displayed ``delta`` (not, say, on other groups)."""
    if key.paired is None:
        return None
    for m in (arm.versus_baseline if versus is None else arm.versus.get(versus, [])):
        value, low, high = m.estimate()
        if m.role == "change" and (m.derived_from, m.attribute) == key.paired and is_finite(value):
            same = abs(float(value) - delta) <= 1e-9  # type: ignore[arg-type]
            return m if same and is_finite(low) and is_finite(high) else None
    return None


def _named(metric: str, attribute: str | None) -> Getter:
    """The arm's result ``metric`` (for ``attribute``; any attribute when ``None``)."""

    def get(arm: ArmResult) -> Estimate | None:
        found = next((m for m in arm.metrics if m.metric == metric and _ok(m)
                      and (attribute is None or m.attribute == attribute)), None)
        return _estimate(found) if found is not None else None

    return get


def _worst_over_attributes(metric: str, higher_is_better: bool) -> Getter:
    """The most extreme worst-group value of ``metric`` across attributes, with its group."""

    def get(arm: ArmResult) -> Estimate | None:
        found = [m for m in arm.metrics if m.metric == metric and _ok(m)]
        if not found:
            return None
        m = (min if higher_is_better else max)(found, key=_value)
        group = m.details.get("group")
        return _estimate(m, f"{m.attribute} = {group}" if group is not None else str(m.attribute or ""))

    return get


def _strongest_probe(attribute: str | None) -> Getter:
    """The strongest probe of ``attribute`` (highest AUC among every probe result) with its interval."""

    def get(arm: ArmResult) -> Estimate | None:
        found = [m for m in arm.metrics if m.role == "probe" and m.headline and m.attribute == attribute and _ok(m)]
        if not found:
            return None
        m = max(found, key=_value)
        kind = probe_kind(m)
        return _estimate(m, f"{kind} probe" if kind else metric_label(m.metric, None))

    return get


def _better(m: MetricResult) -> str:
    if m.role == "probe":
        return "chance"
    if m.role == "ratio":
        return "parity"
    if m.role == "gap":
        return "lower"
    return {True: "higher", False: "lower"}.get(m.higher_is_better, "")  # type: ignore[arg-type]


def _row_for(m: MetricResult) -> tuple[tuple[str, str | None], KeyMetric]:
    """The comparison row a headline result belongs to, and how the row reads every arm."""
    short = short_label(m)
    if m.role == "probe":
        return ("probe", m.attribute), KeyMetric(f"Probe AUC ({m.attribute or 'all'})", _strongest_probe(m.attribute),
                                                  "chance")
    if m.role == "worst_group":
        return (m.metric, None), KeyMetric(short, _worst_over_attributes(m.metric, m.higher_is_better is not False),
                                           _better(m), (m.metric, None))
    if m.role == "value":  # a value over every sample: the same under each attribute
        return (m.metric, None), KeyMetric(short, _named(m.metric, None), _better(m), (m.metric, None))
    where = f" ({m.attribute})" if m.attribute else ""
    return (m.metric, m.attribute), KeyMetric(short + where, _named(m.metric, m.attribute), _better(m),
                                              (m.metric, m.attribute))


def key_metrics(result: AuditResult) -> list[KeyMetric]:
    """Rows of the mitigation comparison: every result a metric declared ``headline`` (task AUC,
    worst-group AUC and EOD from ``group_metrics``; the strongest probe per attribute;
    counterfactual decision flips...), in the spec's metric order, then by role and attribute."""
    ok = [a for a in result.arms if a.status == "ok"]
    headline = [m for a in ok for m in a.metrics if m.headline and m.role in ROLE_ORDER]
    plugins = list(dict.fromkeys(m.plugin for m in headline))
    attributes = attribute_order(result, headline)
    rows: dict[tuple[str, str | None], tuple[tuple[int, int, int], KeyMetric]] = {}
    for m in headline:
        key, row = _row_for(m)
        row.plugin = m.plugin
        if key not in rows:
            where = attributes.index(key[1]) if key[1] in attributes else -1
            rows[key] = ((plugins.index(m.plugin), ROLE_ORDER[m.role], where), row)
    ordered = [row for _, row in sorted(rows.values(), key=lambda item: item[0])]
    return [k for k in ordered if any(k.get(a) is not None for a in ok)]


def _score(value: float, better: str) -> float:
    """Larger is better."""
    if better == "higher":
        return value
    if better == "lower":
        return -abs(value)
    if better == "parity":
        return -abs(value - 1.0)
    return -abs(value - 0.5)


ARMS_PER_TABLE = 4


EMPTY_CELL = {"value": "–", "ci": "", "delta": "", "delta_ci": "", "paired": False, "trend": "", "note": "",
              "spread": "", "beyond_noise": False, "failed": False}


def _cell(arm: ArmResult, key: KeyMetric, ref: Estimate | None, is_ref: bool) -> dict[str, Any]:
    """One arm's value of a key metric, with its change from the reference arm (``ref``)."""
    got = key.get(arm) if arm.status == "ok" else None
    if got is None:
        return {**EMPTY_CELL, "failed": arm.status == "failed"}
    value, low, high, note = got
    cell = {**EMPTY_CELL, "value": num(value), "ci": ci(low, high), "note": note,
            "spread": getattr(got, "spread", "")}
    if is_ref or ref is None or not (is_finite(ref[0]) and is_finite(value)):
        return cell
    delta = float(value) - float(ref[0])
    diff = _score(float(value), key.better) - _score(float(ref[0]), key.better)
    cell["delta"] = ("+" if delta > 0 else "") + num(delta)
    cell["trend"] = "better" if diff > 1e-9 else "worse" if diff < -1e-9 else ""
    change = _paired_change(arm, key, delta)
    if change is not None:
        _, c_low, c_high = change.estimate()
        cell.update(delta_ci=ci(c_low, c_high), paired=True, beyond_noise=_excludes_zero(change))
    else:  # no paired change for this row: does the arm's interval exclude the baseline?
        cell["beyond_noise"] = bool(is_finite(low) and is_finite(high)
                                    and not (min(low, high) <= ref[0] <= max(low, high)))  # type: ignore[type-var]
    return cell


def _cells(result: AuditResult, key: KeyMetric, ref_arm: ArmResult | None) -> list[dict[str, Any]]:
    ref = key.get(ref_arm) if ref_arm is not None else None
    return [_cell(arm, key, ref, arm is ref_arm) for arm in result.arms]


def _chunks(columns: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table split into chunks of :data:`ARMS_PER_TABLE` arm columns (one page wide)."""
    return [{"columns": columns[i:i + ARMS_PER_TABLE],
             "rows": [{"label": r["label"], "cells": r["cells"][i:i + ARMS_PER_TABLE]} for r in rows]}
            for i in range(0, len(columns), ARMS_PER_TABLE)]


def _excludes_zero(change: MetricResult) -> bool:
    """Whether a paired change's interval excludes zero: over seeds, from its over-seeds interval;
    else as the paired bootstrap recorded it (results upgraded from schema 1 may lack the key)."""
    if change.over_seeds is not None:
        _, low, high = change.estimate()
        return bool(low > 0 or high < 0)  # type: ignore[operator]
    return bool(change.details.get("excludes_zero"))


def comparable_arms(result: AuditResult) -> list[ArmResult]:
    """The arms that finished; a comparison needs at least two."""
    return [a for a in result.arms if a.status == "ok"]


def comparison(result: AuditResult) -> dict[str, Any]:
    """Key metrics (rows) × arms (columns, chunked), each cell with its change from the reference
    arm (the baseline, or the first model of given scores); no table with fewer than two finished
    arms (nothing to compare)."""
    keys = key_metrics(result) if len(comparable_arms(result)) >= 2 else []
    ref_arm = result.reference()
    columns = [{"arm": a.name, "kind": a.kind, "failed": a.status == "failed", "error": a.error or ""}
               for a in result.arms]
    rows = [{"label": k.label, "cells": _cells(result, k, ref_arm)} for k in keys]
    return {"chunks": _chunks(columns, rows) if rows else [], "has_baseline": ref_arm is not None,
            "reference": result.settings.reference_arm, "given_scores": given_scores(result),
            "reference_label": reference_label(result),
            "failed": [f"{a.name}: {a.error or 'failed'}" for a in result.arms if a.status == "failed"],
            "named": named_comparisons(result) if keys else [],
            "has_flips": any(k.plugin == "counterfactual_sensitivity" for k in keys),
            "has_paired": any(c["paired"] for r in rows for c in r["cells"]),
            "repeats": sorted({a.repeats for a in result.arms if a.status == "ok"}),
            "repeated": any(a.repeats > 1 for a in result.arms if a.status == "ok")}


def _moves(base: ArmResult, arm: ArmResult, keys: list[KeyMetric], versus: str | None = None) -> list[str]:
    """``label: before → after (delta, paired CI)`` for every key metric both arms have (the
    paired CI of the change from ``versus`` when given, else from the reference arm)."""
    moves = []
    for k in keys:
        a, b = k.get(base), k.get(arm)
        if a is None or b is None or not (is_finite(a[0]) and is_finite(b[0])):
            continue
        delta = float(b[0]) - float(a[0])
        change = _paired_change(arm, k, delta, versus)
        interval = f", paired CI {ci(*change.estimate()[1:])}" if change is not None else ""
        moves.append(f"{k.label}: {num(a[0])} → {num(b[0])} ({'+' if delta > 0 else ''}{num(delta)}{interval})")
    return moves


def _verdict_moves(result: AuditResult, base: ArmResult, arm: ArmResult) -> list[str]:
    """Threshold outcomes that differ between the reference arm and ``arm``."""
    before = {(v.metric, v.attribute): v.outcome for v in result.verdicts if v.arm == base.name}
    out = []
    for v in (v for v in result.verdicts if v.arm == arm.name):
        old = before.get((v.metric, v.attribute))
        if old is not None and old != v.outcome:
            out.append(f"{metric_label(v.metric)} ({v.attribute or 'all'}): "
                       f"{OUTCOME_LABELS.get(old, old)} → {OUTCOME_LABELS.get(v.outcome, v.outcome)}")
    return out


def changes(result: AuditResult) -> list[dict[str, Any]]:
    """Per mitigation (or further model of given scores): what moved against the reference arm
    (key metrics and threshold outcomes)."""
    base = result.reference()
    keys = key_metrics(result)
    comparable = base is not None
    out = []
    for arm in (a for a in result.arms if a.name != result.settings.reference_arm):
        both = comparable and arm.status == "ok"
        named = []
        for other in arm.versus:
            found = result.arm(other)
            if arm.status == "ok" and found is not None and found.status == "ok":
                named.append({"arm": other, "moves": _moves(found, arm, keys, versus=other)})
        out.append({"arm": arm.name, "kind": arm.kind, "failed": arm.status == "failed", "error": arm.error or "",
                    "moves": _moves(base, arm, keys) if both else [],  # type: ignore[arg-type]
                    "verdicts": _verdict_moves(result, base, arm) if both else [],  # type: ignore[arg-type]
                    "named": [n for n in named if n["moves"]]})
    return out


def named_comparisons(result: AuditResult) -> list[dict[str, Any]]:
    """One small table per arm whose spec entry names another arm (``compare_with``): each key
    metric with a paired change, the two arms' values and the arm's change from the named arm
    with its paired interval (``beyond_noise``: the interval excludes zero)."""
    keys = [k for k in key_metrics(result) if k.paired is not None]
    tables = []
    for arm in (a for a in result.arms if a.status == "ok"):
        for other in arm.versus:
            ref = result.arm(other)
            if ref is None or ref.status != "ok":
                continue
            rows = [row for k in keys if (row := _named_row(arm, ref, k)) is not None]
            if rows:
                tables.append({"arm": arm.name, "versus": other, "rows": rows,
                               "repeated": arm.repeats > 1 or ref.repeats > 1})
    return tables


def _over_seeds_change(arm: ArmResult, key: KeyMetric, ref: ArmResult) -> MetricResult | None:
    """The arm's change from ``ref`` for ``key`` summarised over seeds (mean of the per-seed
    paired changes: it differs from the difference of the two means when the arms were trained a
    different number of times), with a finite interval."""
    for m in arm.versus.get(ref.name, []):
        if m.role == "change" and (m.derived_from, m.attribute) == key.paired and m.over_seeds is not None:
            _, low, high = m.estimate()
            return m if is_finite(low) and is_finite(high) else None
    return None


def _named_row(arm: ArmResult, ref: ArmResult, key: KeyMetric) -> dict[str, Any] | None:
    """``key``'s row of a named comparison: both values, the change and its paired interval."""
    a, b = key.get(ref), key.get(arm)
    if a is None or b is None or not (is_finite(a[0]) and is_finite(b[0])):
        return None
    change = _paired_change(arm, key, float(b[0]) - float(a[0]), versus=ref.name) or _over_seeds_change(arm, key, ref)
    if change is None:
        return None
    value, low, high = change.estimate()
    delta = float(value)  # type: ignore[arg-type]
    diff = _score(float(b[0]), key.better) - _score(float(a[0]), key.better)
    return {"label": key.label, "reference": num(a[0]), "value": num(b[0]),
            "delta": ("+" if delta > 0 else "") + num(delta), "delta_ci": ci(low, high),
            "beyond_noise": _excludes_zero(change),
            "trend": "better" if diff > 1e-9 else "worse" if diff < -1e-9 else ""}


def reference_label(result: AuditResult) -> str:
    """The reference arm in a sentence: "the baseline", or the first model's name."""
    ref = result.settings.reference_arm
    return "the baseline" if ref == "baseline" and not given_scores(result) else ref


def given_scores(result: AuditResult) -> bool:
    """Whether the audit read a model's scores (``predictions`` arms) instead of training one."""
    return any(a.kind == "predictions" for a in result.arms)


# ---------------------------------------------------------------- cross-arm figures
PROBE_CAPTION = ("Bars: probe AUC on the test split with its CI; dotted ticks: the same probe trained on shuffled "
                 "attribute labels (what chance looks like for this probe); dashed line: 0.5.")


def _forests(result: AuditResult, ok: list[ArmResult], sink: FigureSink) -> list[dict[str, Any]]:
    names = [a.name for a in ok]
    out = []
    for attribute in attribute_order(result, [m for a in ok for m in a.metrics if is_gap(m)]):
        rows = forest_rows(result, ok, attribute)
        if rows:
            svg = figures.forest_figure(rows, names, title=f"Gaps by {attribute}, every arm")
            out.append(sink.add(f"compare-forest-{attribute}", svg))
    return out


def _probe_bar(arm: ArmResult, m: MetricResult) -> figures.ProbeBar:
    kind = probe_kind(m)
    label = f"{m.attribute or 'all'} ({kind})" if kind else m.attribute or "all"
    shuffled = m.details.get("shuffled_auc")
    return figures.ProbeBar(label, arm.name, m.value, m.ci_low, m.ci_high, shuffled if is_finite(shuffled) else None)


def _probe_figures(ok: list[ArmResult], sink: FigureSink) -> list[dict[str, Any]]:
    """One bar chart per headline probe metric (AUC scale), every arm side by side."""
    out = []
    for probe in dict.fromkeys(m.metric for a in ok for m in a.metrics if m.role == "probe" and m.headline):
        bars = [_probe_bar(a, m) for a in ok for m in a.metrics if m.metric == probe and m.status == "ok"]
        if bars:
            arms = [a.name for a in ok if any(b.arm == a.name for b in bars)]
            svg = figures.probe_figure(bars, arms, title=metric_label(probe) + " by arm")
            out.append(sink.add(f"compare-{probe}", svg, caption=PROBE_CAPTION))
    return out


def _attack_figures(ok: list[ArmResult], sink: FigureSink) -> list[dict[str, Any]]:
    """Attack curves (role ``attack``) of every arm, one panel per attribute and flipped group."""
    panels: dict[tuple[str, str], list[figures.AttackSeries]] = {}
    for a in ok:
        for m in (m for m in a.metrics if m.role == "attack" and m.status == "ok"):
            d = m.details
            panels.setdefault((m.attribute or "all", str(d.get("flipped_group", ""))), []).append(
                figures.AttackSeries(a.name, list(d.get("fractions") or []), list(d.get("eod") or []),
                                     list(d.get("eod_ci_low") or []), list(d.get("eod_ci_high") or [])))
    out = []
    for (attribute, flipped), series in panels.items():
        title = f"Bias attack on {attribute}" + (f" (labels flipped in '{flipped}')" if flipped else "")
        svg = figures.bias_attack_figure(series, title=figures.short(title, 60))
        out.append(sink.add(f"compare-attack-{attribute}-{flipped}", svg))
    return out


def cross_figures(result: AuditResult, sink: FigureSink) -> dict[str, list[dict[str, Any]]]:
    """Forest plots per attribute, probe bars and bias-attack curves across every successful arm."""
    ok = comparable_arms(result)
    return {"forest": _forests(result, ok, sink), "probes": _probe_figures(ok, sink),
            "attacks": _attack_figures(ok, sink)}
