"""Per-arm report content: group tables, gaps, curves, probes, plugin sections, artefacts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fairaudit.caps import MAX_GROUPS, largest
from fairaudit.report import figures
from fairaudit.report.blocks import FigureSink, artefact_blocks, block_context, notice
from fairaudit.report.fmt import ci, is_finite, metric_label, num, param_value, pval, slug
from fairaudit.results import ArmResult, AuditResult, GroupValue, ImageBlock, MetricResult

#: Roles shown in their own tables or figures rather than in the group and gap tables.
OWN_PLACE = frozenset({"curve", "probe", "attack", "change"})
#: How each built-in kind of curve data is drawn (``details["curves"]`` of a ``curve`` result).
CURVE_DRAWERS = {"roc_curve": (figures.roc_figure, "ROC"), "calibration_curve": (figures.calibration_figure,
                                                                                  "Calibration")}
GROUPS_PER_TABLE = 4
KEEP_ROWS = 18  # tables up to this many rows are kept on one page
KIND_LABELS = {"baseline": "Baseline", "debiaser": "Debiaser", "generator": "Generator",
               "predictions": "Given scores"}


def is_gap(m: MetricResult) -> bool:
    """A difference between groups drawn in forest plots (declared role ``gap``, not a variant)."""
    return m.role == "gap" and not m.variant


def is_probe(m: MetricResult) -> bool:
    return m.role == "probe"


class Footnotes:
    """Numbered notes shared by the rows of one table (long repeated notes appear once)."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def refs(self, notes: Iterable[str]) -> list[int]:
        out = []
        for note in notes:
            note = str(note)
            if note not in self.notes:
                self.notes.append(note)
            out.append(self.notes.index(note) + 1)
        return out


def attribute_order(result: AuditResult, metrics: Iterable[MetricResult]) -> list[str]:
    """Declared attributes first, then intersections, then anything else, without repeats."""
    declared = list(result.settings.attributes)
    declared += ["&".join(c) for c in result.settings.intersections]
    found = [m.attribute for m in metrics if m.attribute]
    return list(dict.fromkeys([a for a in declared if a in found] + found))


def small_groups(arm: ArmResult) -> list[str]:
    """``attribute = group (n = …): why, for which metrics`` for every group some metric of ``arm``
    could not judge (the metric's ``details["excluded"]`` reasons, e.g. "2 negatives < 5")."""
    why: dict[tuple[str, str], dict[str, list[str]]] = {}
    sizes: dict[tuple[str, str], int] = {}
    for m in arm.metrics:
        reasons = {str(e.get("group")): str(e.get("reason", "")) for e in m.details.get("excluded") or []
                   if isinstance(e, dict)}
        for g in (g for g in m.per_group if g.too_small):
            key = (g.attribute, g.group)
            sizes[key] = g.n
            why.setdefault(key, {}).setdefault(reasons.get(g.group, "too small"), []).append(
                metric_label(m.metric, m.label))
    return [f"{a} = {grp} (n = {sizes[(a, grp)]}): " + "; ".join(f"{r} for {', '.join(dict.fromkeys(ms))}"
                                                                    for r, ms in by_reason.items())
            for (a, grp), by_reason in why.items()]


def _header(name: str | None, groups: dict[str, GroupValue]) -> dict[str, Any]:
    """A group column's heading (``None``: every sample of the test split)."""
    if name is None:
        positives = [g.n_pos for g in groups.values()]
        return {"name": "All", "n": num(sum(g.n for g in groups.values())), "small": False,
                "n_pos": num(sum(positives)) if None not in positives else ""}  # type: ignore[arg-type]
    gv = groups[name]
    return {"name": name, "n": num(gv.n), "small": gv.too_small,
            "n_pos": num(gv.n_pos) if gv.n_pos is not None else ""}


def _group_cell(m: MetricResult, name: str | None) -> dict[str, Any]:
    if name is None:
        return {"value": num(m.value), "ci": ci(m.ci_low, m.ci_high), "small": False}
    gv = next((g for g in m.per_group if g.group == name), None)
    if gv is None:
        return {"value": "–", "ci": "", "small": False}
    return {"value": num(gv.value), "ci": ci(gv.ci_low, gv.ci_high), "small": gv.too_small}


def _group_table(metrics: list[MetricResult]) -> list[dict[str, Any]]:
    """One attribute's values: rows = metrics, columns = all samples then each group, chunked."""
    groups: dict[str, GroupValue] = {}
    for m in metrics:
        for g in m.per_group:
            groups.setdefault(g.group, g)
    if len(groups) > MAX_GROUPS:  # a result of an earlier version may hold every group: the largest
        kept, _ = largest([{"name": k, "n": g.n} for k, g in groups.items()])
        groups = {r["name"]: groups[r["name"]] for r in kept}
    columns: list[str | None] = [None, *groups]
    chunks = []
    for start in range(0, len(columns), GROUPS_PER_TABLE + 1):
        part = columns[start : start + GROUPS_PER_TABLE + 1]
        rows = [{"metric": metric_label(m.metric, m.label), "cells": [_group_cell(m, g) for g in part]}
                for m in metrics]
        chunks.append({"groups": [_header(g, groups) for g in part], "rows": rows})
    return chunks


def _group_tables(result: AuditResult, arm: ArmResult) -> list[dict[str, Any]]:
    """Per attribute, the results of role ``value`` with their groups."""
    with_groups = [m for m in arm.metrics if m.per_group and m.role == "value"]
    return [{"attribute": attribute, "chunks": _group_table([m for m in with_groups if m.attribute == attribute])}
            for attribute in attribute_order(result, with_groups)]


def _gap_rows(arm: ArmResult) -> tuple[list[dict[str, Any]], list[str], int]:
    """Rows of the gap table, their footnotes, and how many derived variants were left out."""
    rows, notes, hidden = [], Footnotes(), 0
    for m in arm.metrics:
        if m.role in OWN_PLACE or m.status == "error" or (m.role == "value" and m.per_group):
            continue  # values with groups are in the group tables (column "All")
        if m.value is None and m.status == "ok":
            continue
        if m.variant:
            hidden += 1
            continue
        small = m.status == "too_small"
        rows.append(
            {
                "metric": metric_label(m.metric, m.label),
                "attribute": m.attribute or "all",
                "value": "–" if small else num(m.value),
                "ci": "" if small else ci(m.ci_low, m.ci_high),
                "p": pval(m.p_value),
                "p_adj": pval(m.p_adjusted),
                "status": {
                    "ok": "",
                    "too_small": "groups too small",
                    "not_applicable": "not applicable",
                }.get(m.status, m.status),
                "warn": small,
                "refs": notes.refs(m.notes),
            }
        )
    return rows, notes.notes, hidden


def thresholds_for(
    result: AuditResult, metric: str, attribute: str | None
) -> tuple[float | None, float | None]:
    """Declared bounds for ``metric`` (on ``attribute``), from the verdicts that judged it."""
    for v in result.verdicts:
        if v.metric == metric and (
            v.attribute is None or attribute is None or v.attribute == attribute
        ):
            return v.min, v.max
    return None, None


def forest_rows(
    result: AuditResult, arms: list[ArmResult], attribute: str | None
) -> list[figures.ForestRow]:
    """One row per gap metric (of ``attribute``, or every attribute when ``None``)."""
    rows: dict[tuple[str, str | None], figures.ForestRow] = {}
    for arm in arms:
        for m in arm.metrics:
            if not is_gap(m) or m.status != "ok" or not is_finite(m.value):
                continue
            if attribute is not None and m.attribute != attribute:
                continue
            key = (m.metric, m.attribute)
            if key not in rows:
                label = metric_label(m.metric, m.label)
                if attribute is None and m.attribute:
                    label = f"{label} — {m.attribute}"
                low, high = thresholds_for(result, m.metric, m.attribute)
                rows[key] = figures.ForestRow(label=label, min=low, max=high)
            rows[key].estimates.setdefault(arm.name, (m.value, m.ci_low, m.ci_high))
    return list(rows.values())


def _curve_figure(m: MetricResult, sink: FigureSink, key: str) -> dict[str, Any] | None:
    """The figure of one curve result (``None`` without curve data)."""
    draw, what = CURVE_DRAWERS[m.metric]
    curves = m.details.get("curves")
    curves = {str(g): c for g, c in curves.items() if isinstance(c, dict)} if isinstance(curves, dict) else {}
    if not curves:
        return None
    svg = draw(curves, title=f"{what} by {m.attribute}", dashed=[g.group for g in m.per_group if g.too_small])
    return sink.add(f"{key}-{what.lower()}-{m.attribute}", svg)


def _curves(arm: ArmResult, result: AuditResult, sink: FigureSink, key: str) -> list[dict[str, Any]]:
    """Per attribute, the figures of the arm's curve results (ROC, calibration)."""
    curve_metrics = [m for m in arm.metrics if m.role == "curve" and m.metric in CURVE_DRAWERS]
    out = []
    for attribute in attribute_order(result, curve_metrics):
        drawn = [_curve_figure(m, sink, key) for m in curve_metrics if m.attribute == attribute]
        if any(drawn):
            out.append({"attribute": attribute, "figures": [f for f in drawn if f is not None]})
    return out


def probe_kind(m: MetricResult) -> str:
    """The probe model of a probe result (``linear``, ``mlp``...) when recorded."""
    kind = m.details.get("probe")
    return str(kind) if isinstance(kind, str) else ""


def probe_rows(arm: ArmResult) -> tuple[list[dict[str, Any]], list[str]]:
    """Probe results with their shuffled-label baselines, and the table's footnotes."""
    rows, notes = [], Footnotes()
    for m in arm.metrics:
        if not is_probe(m):
            continue
        shuffled = next((v for k, v in m.details.items() if k.startswith("shuffled_")), None)
        rows.append(
            {
                "metric": metric_label(m.metric, m.label),
                "probe": probe_kind(m),
                "attribute": m.attribute or "all",
                "value": num(m.value),
                "ci": ci(m.ci_low, m.ci_high),
                "shuffled": num(float(shuffled)) if is_finite(shuffled) else "–",
                "p_adj": pval(m.p_adjusted if m.p_adjusted is not None else m.p_value),
                "status": "" if m.status == "ok" else m.status,
                "refs": notes.refs(m.notes),
            }
        )
    return rows, notes.notes


def _params(params: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(k), param_value(v)) for k, v in params.items()]


def _empty_context(arm: ArmResult, key: str) -> dict[str, Any]:
    return {
        "id": key, "name": arm.name, "kind": arm.kind, "kind_label": KIND_LABELS.get(arm.kind, arm.kind),
        "plugin": arm.plugin or "", "params": _params(arm.params), "status": arm.status,
        "error": arm.error or "", "traceback": arm.traceback or "",
        "timings": [(k, f"{v:.1f} s") for k, v in arm.timings.items() if is_finite(v)],
        "group_tables": [], "gap_rows": [], "gap_notes": [], "gap_keep": True, "hidden_metrics": 0,
        "forests": [], "curves": [], "probes": [], "probe_notes": [], "probe_keep": True, "blocks": [],
        "images": [], "files": [], "metric_errors": [], "small": [], "plugin_sections": [],
    }


def _forests(result: AuditResult, arm: ArmResult, sink: FigureSink, key: str) -> list[dict[str, Any]]:
    out = []
    for attribute in attribute_order(result, [m for m in arm.metrics if is_gap(m)]):
        rows = forest_rows(result, [arm], attribute)
        if rows:
            svg = figures.forest_figure(rows, [arm.name], title=f"Gaps by {attribute}: {arm.name}")
            out.append(sink.add(f"{key}-forest-{attribute}", svg))
    return out


def _blocks(arm: ArmResult, run_dir: Path, sink: FigureSink, key: str) -> list[dict[str, Any]]:
    out = []
    for j, block in enumerate(arm.blocks):
        try:
            out.append(block_context(block, run_dir, sink, f"{key}-section{j + 1}"))
        except Exception as exc:  # a malformed plugin block must not break the report
            out.append(notice("Section not shown", f"{type(exc).__name__}: {exc}"))
    return out


def arm_context(result: AuditResult, arm: ArmResult, index: int, run_dir: Path, sink: FigureSink) -> dict[str, Any]:
    """Everything the arm template shows for ``arm``."""
    key = f"arm{index}-{slug(arm.name, 30)}"
    ctx = _empty_context(arm, key)
    if arm.status == "failed":
        return ctx
    ctx["group_tables"] = _group_tables(result, arm)
    ctx["gap_rows"], ctx["gap_notes"], ctx["hidden_metrics"] = _gap_rows(arm)
    ctx["gap_keep"] = len(ctx["gap_rows"]) <= KEEP_ROWS
    ctx["forests"] = _forests(result, arm, sink, key)
    ctx["curves"] = _curves(arm, result, sink, key)
    ctx["probes"], ctx["probe_notes"] = probe_rows(arm)
    ctx["probe_keep"] = len(ctx["probes"]) <= KEEP_ROWS
    ctx["small"] = small_groups(arm)
    ctx["metric_errors"] = [f"{m.metric} ({m.plugin}): {'; '.join(m.notes) or 'failed'}"
                            for m in arm.metrics if m.status == "error"]
    ctx["blocks"] = _blocks(arm, run_dir, sink, key)
    shown = {str(b.path) for b in arm.blocks if isinstance(b, ImageBlock)}
    ctx["images"], ctx["files"] = artefact_blocks({k: v for k, v in arm.artefacts.items() if str(v) not in shown},
                                                  run_dir)
    return ctx
