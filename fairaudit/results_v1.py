"""Reader for ``result.json`` files of schema version 1 (committed samples, old run folders).

Version 1 results carried no declared roles: the report guessed what a metric was from its
name.  That guess lives here, once, to upgrade old files; new results declare their roles.
Version 1 also had untyped ``settings``/``dataset``/``provenance`` dicts (unknown keys are
dropped) and plugin ``sections`` (now typed ``blocks``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from fairaudit.results import DatasetSummary, GroupSummary, Provenance, Settings, SplitSummary

_HEADLINE = {"roc_auc", "worst_group_auc", "equal_opportunity_difference", "attribute_probe_auc", "attack_probe_auc"}
_VARIANT_SUFFIXES = ("_ratio", "_to_overall", "_signed", "_mean")


def role_of(metric: str) -> dict[str, Any]:
    """Role fields of a version-1 result, from the naming rules version 1 reports used."""
    fields: dict[str, Any] = {"headline": metric in _HEADLINE or metric.startswith("cf_sensitivity_")}
    if metric in ("roc_curve", "calibration_curve"):
        fields["role"] = "curve"
    elif metric.startswith(("attribute_probe", "attack_probe")):
        fields["role"] = "probe"
    elif metric == "bias_attack_eod":
        fields["role"] = "attack"
    elif metric.startswith("worst_group_"):
        fields.update(role="worst_group", variant=True)
    elif metric.endswith(_VARIANT_SUFFIXES):
        fields.update(role="ratio" if "_ratio" in metric else "gap", variant=True)
    elif metric.endswith("_difference"):
        fields["role"] = "gap"
    return fields


def _known(model: type[BaseModel], data: Any) -> dict[str, Any]:
    """The entries of ``data`` that ``model`` has fields for."""
    return {k: v for k, v in (data or {}).items() if k in model.model_fields} if isinstance(data, dict) else {}


def _split(data: dict[str, Any]) -> dict[str, Any]:
    out = _known(SplitSummary, data)
    out["groups"] = {str(a): [_known(GroupSummary, g) for g in rows if isinstance(g, dict)]
                     for a, rows in (out.get("groups") or {}).items() if isinstance(rows, list)}
    return out


def _spec(text: str) -> dict[str, Any]:
    """The spec as data (safe YAML); empty when it cannot be parsed."""
    if not text.strip():
        return {}
    try:
        from ruamel.yaml import YAML

        data = YAML(typ="safe", pure=True).load(text)
    except Exception:
        return {}
    return data if isinstance(data, dict) else {}


def _arm(arm: dict[str, Any]) -> dict[str, Any]:
    from fairaudit.blocks import to_blocks

    out = dict(arm)
    out["metrics"] = [{**role_of(str(m.get("metric", ""))), **m} for m in arm.get("metrics") or []]
    out["versus_baseline"] = [{**m, "role": "change", "derived_from": m.get("metric")}
                              for m in arm.get("versus_baseline") or []]
    blocks, _ = to_blocks(out.pop("sections", None) or [], f"arm {arm.get('name')!r}")
    out["blocks"] = [b.model_dump() for b in blocks]
    return out


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 result as version-2 data."""
    from fairaudit.results import RESULT_SCHEMA_VERSION

    out = dict(data)
    out["schema_version"] = RESULT_SCHEMA_VERSION
    out["arms"] = [_arm(a) for a in data.get("arms") or []]
    out["settings"] = _known(Settings, data.get("settings"))
    dataset = _known(DatasetSummary, data.get("dataset"))
    dataset["summary"] = {k: _split(v) for k, v in (dataset.get("summary") or {}).items() if isinstance(v, dict)}
    out["dataset"] = dataset
    provenance = _known(Provenance, data.get("provenance"))
    if isinstance((data.get("provenance") or {}).get("torch"), str):  # a separate key in version 1
        provenance["packages"] = {**provenance.get("packages", {}), "torch": data["provenance"]["torch"]}
    out["provenance"] = provenance
    out["spec"] = _spec(str(data.get("spec_text") or ""))
    return out
