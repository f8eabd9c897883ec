"""JSON Schema of the spec, with each installed plugin's parameter schema (like ``tox schema``)."""

from __future__ import annotations

from typing import Any

from fairaudit.params import param_schema
from fairaudit.spec.models import AuditSpec


def spec_json_schema() -> dict[str, Any]:
    from fairaudit.plugins import load_plugins

    schema = AuditSpec.model_json_schema()
    plugins = load_plugins()
    catalogue: dict[str, Any] = {}
    for family in ("datasets", "models", "debiasers", "generators", "metrics"):
        catalogue[family] = {
            name: {"description": getattr(entry.cls, "description", ""), "params": param_schema(entry.cls),
                   "source": str(entry.source)}
            for name, entry in plugins.registry(family).items()
        }
    schema["x-fairaudit-plugins"] = catalogue
    return schema
