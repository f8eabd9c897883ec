"""Fingerprints of arms: everything that changes what an arm computes, so that ``--resume`` keeps
an arm file only when it was computed exactly as the arm would be now.

An arm's fingerprint holds its resolved configuration (plugin name, label, params, a
generator's evaluations; its position, which seeds it), the data hash, the split (sizes,
stratification, resolved seed), the run-wide settings that change an arm (master seed,
attributes, intersections, decision threshold, downstream model, metrics, statistics, mixed
precision) and the versions of fairaudit and of the plugins the arm uses.
"""

from __future__ import annotations

import importlib.metadata as md
from typing import TYPE_CHECKING, Any

from fairaudit.spec.components import field_of
from fairaudit.spec.models import AuditSpec, Component
from fairaudit.spec.settings import split_seed

if TYPE_CHECKING:
    from fairaudit.audit.arm import ArmPlan
    from fairaudit.plugins import PluginSet

#: Differences named in a message, at most.
MAX_SHOWN = 4


def arm_fingerprint(plan: ArmPlan, spec: AuditSpec, data_hash: str, plugins: PluginSet,
                    model_files: dict[str, str] | None = None) -> dict[str, Any]:
    """The fingerprint of ``plan`` in this run (plain JSON data); ``model_files``: digests of the
    files the downstream model reads (e.g. its weights), by path, when it reads any."""
    used: list[tuple[str, Component]] = [(plan.family, plan.component), ("models", spec.model)]
    used += [("metrics", m) for m in spec.metrics]
    extra = {"model_files": model_files} if model_files else {}
    return {**extra,
        "arm": plan.config(),
        "data_hash": data_hash,
        "split": {**spec.split.model_dump(mode="json"), "seed": split_seed(spec)},
        "seed": spec.seed,
        "attributes": list(spec.attributes),
        "intersections": [list(c) for c in spec.intersections],
        "decision_threshold": spec.decision_threshold,
        "model": spec.model.model_dump(mode="json"),
        "metrics": [m.model_dump(mode="json") for m in spec.metrics],
        "statistics": spec.statistics.model_dump(mode="json"),
        "mixed_precision": spec.mixed_precision,
        "versions": {"fairaudit": fairaudit_version(), "plugins": plugin_versions(plugins, used)},
    }


def fairaudit_version() -> str:
    try:
        return md.version("fairaudit")
    except md.PackageNotFoundError:
        from fairaudit import __version__

        return __version__


def plugin_versions(plugins: PluginSet, used: list[tuple[str, Component]]) -> dict[str, str]:
    """``family:name`` -> where the plugin came from (``distribution==version``, or its file)."""
    out: dict[str, str] = {}
    for family, comp in used:
        try:
            source = plugins.registry(family).source(comp.name)
        except KeyError:  # unknown plugins were reported when the spec was checked
            continue
        where = f"{source.distribution}=={source.version}" if source.distribution else source.plugin
        out[f"{field_of(family).field}:{comp.name}"] = where
    return out


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Where two fingerprints differ, as ``path: old -> new`` (dicts compared key by key)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            found += differences(old.get(key, "(absent)"), new.get(key, "(absent)"), sub)
        return found
    return [] if old == new else [f"{path or 'fingerprint'}: {_short(old)} -> {_short(new)}"]


def describe(diffs: list[str]) -> str:
    """The first few differences, in one line."""
    shown = "; ".join(diffs[:MAX_SHOWN])
    return shown + (f"; and {len(diffs) - MAX_SHOWN} more" if len(diffs) > MAX_SHOWN else "")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
