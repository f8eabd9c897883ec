"""``result.json``'s content from a finished run: a pure function of the run's state, its arms
and verdicts (no file is read or written here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fairaudit.audit.predictions_plan import reference_arm
from fairaudit.plugins import PluginSet
from fairaudit.results import ArmResult, AuditResult, Verdict
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
        arms=arms, verdicts=verdicts, warnings=list(state.warnings),
        provenance={"fairaudit_version": environment["packages"]["fairaudit"],
                    "python": environment["python"], "platform": environment["platform"],
                    "packages": environment["packages"], "plugins": state.plugins.versions(), "git": git,
                    "timings": dict(state.timings), "data_hash": data_hash, "device": device,
                    "world_size": world_size, "descriptions": plugin_descriptions(spec, state.plugins),
                    "threads": threads or {}},
        spec=spec.model_dump(mode="json"),
        spec_text=state.loaded.text,
    )


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
