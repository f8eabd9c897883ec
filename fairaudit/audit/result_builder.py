"""``result.json``'s content from a finished run: a pure function of the run's state, its arms
and verdicts (no file is read or written here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fairaudit.audit.predictions_plan import reference_arm
from fairaudit.caps import MAX_GROUPS, bounded_warnings, largest
from fairaudit.plugins import PluginSet
from fairaudit.results import ArmResult, AuditResult, MetricResult, Verdict
from fairaudit.spec.models import AuditSpec
from fairaudit.spec.settings import result_settings

if TYPE_CHECKING:
    from fairaudit.audit.state import RunState


def build_result(state: RunState, arms: list[ArmResult], verdicts: list[Verdict], *, data_hash: str,
                 environment: dict[str, Any], git: str | None, world_size: int, created: str,
                 threads: dict[str, Any] | None = None) -> AuditResult:
    """The audit's result: dataset summary, settings, arms, verdicts, warnings and provenance."""
    spec = state.spec
    device = state.context.device
    return AuditResult(
        name=spec.name, title=spec.title or spec.report.title or f"Fairness audit: {spec.name}",
        created=created,
        dataset={"name": spec.dataset.name, "description": state.dataset.meta.get("description", ""),
                 "params": dict(spec.dataset.params),
                 "summary": {k: v.summary() for k, v in state.splits.items()},
                 "hash": data_hash},
        settings=result_settings(spec, state.stats, device, reference_arm=reference_arm(state.dataset),
                                 given_split=given_split(state)),
        arms=[capped_groups(arm) for arm in arms], verdicts=verdicts,
        warnings=bounded_warnings(state.warnings),
        provenance={"fairaudit_version": environment["packages"]["fairaudit"],
                    "python": environment["python"], "platform": environment["platform"],
                    "packages": environment["packages"], "plugins": state.plugins.versions(), "git": git,
                    "timings": dict(state.timings), "data_hash": data_hash, "device": device,
                    "world_size": world_size, "descriptions": plugin_descriptions(spec, state.plugins),
                    "threads": threads or {}},
        spec=spec.model_dump(mode="json"),
        spec_text=state.loaded.text,
    )


def capped_groups(arm: ArmResult) -> ArmResult:
    """``arm`` with each metric's ``per_group`` table bounded: per attribute the
    :data:`~fairaudit.caps.MAX_GROUPS` largest groups, and a note saying how many were left out."""
    if not any(len(m.per_group) > MAX_GROUPS for m in arm.metrics):
        return arm
    return arm.model_copy(update={"metrics": [_capped(m) for m in arm.metrics]})


def _capped(metric: MetricResult) -> MetricResult:
    if len(metric.per_group) <= MAX_GROUPS:
        return metric
    by_attribute: dict[str, list[dict[str, Any]]] = {}
    for i, g in enumerate(metric.per_group):
        by_attribute.setdefault(g.attribute, []).append({"i": i, "n": g.n})
    keep: set[int] = set()
    notes = list(metric.notes)
    for attribute, rows in by_attribute.items():
        kept, left_out = largest(rows)
        keep |= {r["i"] for r in kept}
        if left_out:
            notes.append(f"per-group values of {attribute!r}: the {len(kept)} largest of {len(rows):,} groups are "
                         f"kept; {left_out:,} smaller group(s) left out of result.json")
    return metric.model_copy(update={"per_group": [g for i, g in enumerate(metric.per_group) if i in keep],
                                     "notes": notes})


def given_split(state: RunState) -> dict[str, Any] | None:
    """How the rows of an audit of given scores were used (``None`` for an audit that trains)."""
    meta = state.dataset.meta
    if state.dataset.scores is None:
        return None
    val = state.splits.val
    return {"given": True, "split_column": meta.get("split_column"), "val_value": meta.get("val_value"),
            "n_test": len(state.splits.test), "n_val": len(val) if val is not None else 0}


def plugin_descriptions(spec: AuditSpec, plugins: PluginSet) -> dict[str, str]:
    """Plugin name -> its one-line description, for every component the spec uses."""
    out: dict[str, str] = {}
    for family, _path, comp in spec.components():
        try:
            cls = plugins.registry(family).get(comp.name)
        except Exception:  # reported elsewhere; a description is not worth failing for
            continue
        text = str(getattr(cls, "description", "") or (cls.__doc__ or "").strip().split("\n")[0])
        out.setdefault(comp.name, text)
    return out
