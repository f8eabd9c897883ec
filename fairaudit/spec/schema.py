"""The spec reference, generated from the pydantic models and the installed plugins.

:func:`spec_json_schema` is the JSON Schema (like ``tox schema``); :func:`spec_markdown` the
human reference (``fairaudit schema --format markdown > docs/spec-reference.md``).  The
markdown's core part (spec fields and built-in plugins) lies between :data:`CORE_BEGIN` and
:data:`CORE_END` and does not depend on which third-party plugins are installed.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import pydantic
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from fairaudit.params import param_schema, params_model
from fairaudit.spec.components import SPEC_FAMILIES, field_of
from fairaudit.spec.models import AuditSpec

if TYPE_CHECKING:
    from fairaudit.plugins import PluginSet
    from fairaudit.registry import Entry

CORE_BEGIN = "<!-- fairaudit-core:begin (spec fields and built-in plugins) -->"
CORE_END = "<!-- fairaudit-core:end -->"
REGENERATE = "fairaudit schema --format markdown > docs/spec-reference.md"

#: Descriptions of spec fields whose pydantic ``Field`` carries none (a model description wins).
FIELD_NOTES: dict[str, str] = {
    "AuditSpec.schema_version": "Version of the spec format.",
    "AuditSpec.title": "Report title (default: `report.title`, else `Fairness audit: <name>`).",
    "AuditSpec.description": "Free text about the audit (kept with the spec text in the report's appendix).",
    "AuditSpec.seed": "Master seed: split (unless `split.seed`), training of every arm, bootstrap and "
                      "permutation draws.",
    "AuditSpec.device": "`auto` (CUDA when available, else CPU), `cpu`, `cuda`, `cuda:N` or `mps`.",
    "AuditSpec.on_missing_cuda": "CUDA requested but unavailable: `warn` and use the CPU, or `fail`.",
    "AuditSpec.mixed_precision": "Autocast (bfloat16, else float16 with loss scaling) in torch training loops "
                                 "that use `fairaudit.training.MixedPrecision`; CUDA only.",
    "AuditSpec.dataset": "Dataset plugin that loads the data.",
    "AuditSpec.intersections": "Combinations of at least two `attributes` audited as intersectional groups.",
    "AuditSpec.split": "Patient-level, stratified, seeded train/validation/test split (not with a dataset of "
                       "given scores such as `predictions`: an error there).",
    "AuditSpec.model": "Downstream classifier fitted on every arm (not with a dataset of given scores such as "
                       "`predictions`: an error there).",
    "AuditSpec.debiasers": "Debiaser arms: each is fitted on the training split, and the downstream model is "
                           "refitted on its output.",
    "AuditSpec.generators": "Generator arms: each is fitted on the training split and evaluated as listed in "
                            "its `evaluation`.",
    "AuditSpec.metrics": "Metric plugins computed on the test split of every arm.",
    "AuditSpec.decision_threshold": "Score at or above which a prediction counts as positive.",
    "AuditSpec.statistics": "Bootstrap, permutation and group-size settings.",
    "AuditSpec.thresholds": "Declared limits per metric name (e.g. `equal_opportunity_difference: {max: 0.05}`), "
                            "judged with the CI in view: pass, fail, inconclusive or too small.",
    "AuditSpec.report": "Report formats and title.",
    "SplitSpec.test_size": "Fraction of patients held out for testing.",
    "SplitSpec.val_size": "Fraction of patients used for validation (0: none).",
    "StatisticsSpec.n_boot": "Bootstrap resamples (patients, within their group) for confidence intervals.",
    "StatisticsSpec.ci_level": "Confidence level of the intervals.",
    "StatisticsSpec.min_group_size": "Groups with fewer rows are too small to judge on metrics that count rows "
    "(selection rate, accuracy, Brier, ECE): no verdict.",
    "StatisticsSpec.min_group_positives": "Fewest rows in a metric's denominator (e.g. positives for the true "
                                          "positive rate) for a group to be judged.",
    "StatisticsSpec.n_permutations": "Permutations for the p-values of group gaps.",
    "StatisticsSpec.multiple_testing": "Adjust p-values across the report with Benjamini-Hochberg (`bh`), or not.",
    "Threshold.min": "Lowest acceptable value.",
    "Threshold.max": "Highest acceptable value.",
    "ReportSpec.formats": "Report files to render (PDF needs the `pdf` extra and Pango).",
    "ReportSpec.title": "Report title when the spec has no `title`.",
}

def spec_json_schema(plugins: PluginSet | None = None) -> dict[str, Any]:
    """JSON Schema of :class:`AuditSpec` plus ``x-fairaudit-plugins``: every plugin's parameter schema."""
    from fairaudit.plugins import load_plugins

    schema = AuditSpec.model_json_schema()
    plugins = plugins or load_plugins()
    catalogue: dict[str, Any] = {}
    for family in SPEC_FAMILIES:
        catalogue[family] = {
            name: {"description": getattr(entry.cls, "description", ""), "params": param_schema(entry.cls),
                   "source": str(entry.source)}
            for name, entry in plugins.registry(family).items()
        }
    schema["x-fairaudit-plugins"] = catalogue
    return schema


# ---------------------------------------------------------------- rendering helpers
def type_name(tp: Any) -> str:
    """A short, Python-style name of an annotation (``list[str] | None``, ``"warn" | "fail"``)."""
    if tp is type(None):
        return "None"
    if tp is Any:
        return "any"
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        if not args:
            return name
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return f"tuple[{type_name(args[0])}, ...]"
        return f"{name}[{', '.join(type_name(a) for a in args)}]"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _jsonable(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def default_text(field: FieldInfo) -> str:
    """The default as a JSON/YAML value in backticks, or ``required``."""
    if field.is_required():
        return "required"
    if field.default is not PydanticUndefined:
        value = field.default
    else:
        try:
            value = field.get_default(call_default_factory=True)
        except Exception:  # a factory needing validated data: say so rather than guess
            return "computed"
    try:
        text = json.dumps(_jsonable(value), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return f"`{text}`"


_CONSTRAINTS = (("exclusiveMinimum", "> {}"), ("minimum", ">= {}"), ("exclusiveMaximum", "< {}"),
                ("maximum", "<= {}"), ("minLength", "min length {}"), ("minItems", "at least {} item(s)"),
                ("maxItems", "at most {} item(s)"), ("pattern", "pattern `{}`"))


def _type_cell(annotation: Any, prop: dict[str, Any]) -> str:
    """The "type" column: the type in backticks, then its JSON-schema limits if any."""
    limits = _constraints(prop)
    return f"`{type_name(annotation)}`" + (" (" + ", ".join(limits) + ")" if limits else "")


def _constraints(prop: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for part in [prop, *prop.get("anyOf", [])]:
        if "prefixItems" in part:  # a fixed-length tuple: its type already says how many items
            part = {k: v for k, v in part.items() if k not in ("minItems", "maxItems")}
        found += [fmt.format(part[key]) for key, fmt in _CONSTRAINTS if key in part]
    return [c.replace("1 item(s)", "1 item").replace("item(s)", "items") for c in found]


def _cell(text: str) -> str:
    """Text safe inside one markdown table cell (pipes escaped, ``<`` outside code spans too)."""
    parts = " ".join(text.split()).split("`")
    parts[::2] = [re.sub(r"<(?=[A-Za-z/!?])", "&lt;", p) for p in parts[::2]]  # what markdown reads as HTML
    return "`".join(parts).replace("|", "\\|")


def _rst_to_md(text: str) -> str:
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n\n")[0].replace("\n", " ")


def param_docs(cls: type) -> dict[str, str]:
    """Parameter descriptions from the numpydoc ``Parameters`` section of ``cls``'s own docstrings.

    An entry may name several parameters (``a, b:``): the first gets the text prefixed with the
    group's names, the others a pointer to the first.
    """
    init = cls.__dict__.get("__init__")
    docs: dict[str, str] = {}
    for raw in (cls.__dict__.get("__doc__"), init.__doc__ if init is not None else None):
        for names, body in _parameter_entries(inspect.cleandoc(raw).splitlines() if raw else []):
            text = _rst_to_md(" ".join(body))
            if len(names) > 1:
                docs.setdefault(names[0], f"({', '.join(f'`{n}`' for n in names)}) {text}")
                for name in names[1:]:
                    docs.setdefault(name, f"See `{names[0]}`.")
            else:
                docs.setdefault(names[0], text)
    return docs


_ENTRY = re.compile(r"^([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(?::.*)?$")


def _is_underline(line: str) -> bool:
    return set(line.strip()) == {"-"}


def _parameters_section(lines: list[str]) -> list[str]:
    """The lines of the first numpydoc ``Parameters`` section (below its underline, up to the
    next section's title); empty when there is none."""
    heads = [i for i in range(len(lines) - 1) if lines[i].strip() and _is_underline(lines[i + 1])]
    start = next((i for i in heads if lines[i].strip() == "Parameters"), None)
    if start is None:
        return []
    end = next((i for i in heads if i > start), len(lines))
    return lines[start + 2:end]


def _parameter_entries(lines: list[str]) -> Iterator[tuple[list[str], list[str]]]:
    """``(names, description lines)`` of each entry of the first ``Parameters`` section."""
    names: list[str] = []
    body: list[str] = []
    for line in _parameters_section(lines):
        entry = _ENTRY.match(line)
        if line[:1].strip() and entry:
            if names:
                yield names, body
            names, body = [n.strip() for n in entry.group(1).split(",")], []
        elif names and line.strip():
            body.append(line.strip())
    if names:
        yield names, body


# ---------------------------------------------------------------- spec fields
def _spec_models() -> list[tuple[type[pydantic.BaseModel], list[str]]]:
    """Every model reachable from :class:`AuditSpec` (breadth-first) with the paths that use it."""
    order: list[type[pydantic.BaseModel]] = [AuditSpec]
    used: dict[type[pydantic.BaseModel], list[str]] = {AuditSpec: []}
    queue: list[tuple[type[pydantic.BaseModel], str]] = [(AuditSpec, "")]
    while queue:
        model, prefix = queue.pop(0)
        for fname, field in model.model_fields.items():
            path = f"{prefix}{fname}"
            for sub, suffix in _nested_models(field.annotation):
                if sub not in used:
                    order.append(sub)
                    used[sub] = []
                    queue.append((sub, f"{path}{suffix}."))
                used[sub].append(f"{path}{suffix}")
    return [(m, used[m]) for m in order]


def _nested_models(tp: Any, suffix: str = "") -> Iterator[tuple[type[pydantic.BaseModel], str]]:
    origin, args = get_origin(tp), get_args(tp)
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        yield tp, suffix
    elif origin in (list, tuple, set, frozenset):
        for a in args:
            yield from _nested_models(a, suffix + "[]")
    elif origin is dict and len(args) == 2:
        yield from _nested_models(args[1], suffix + ".<key>")
    elif origin in (Union, types.UnionType, typing.Annotated):
        for a in args:
            yield from _nested_models(a, suffix)


def _model_section(model: type[pydantic.BaseModel], used_by: list[str]) -> list[str]:
    title = "Top level (`AuditSpec`)" if model is AuditSpec else f"`{model.__name__}`"
    lines = [f"### {title}", ""]
    doc = _first_line(model.__doc__ if "__doc__" in model.__dict__ else "")
    if doc:
        lines += [_rst_to_md(doc), ""]
    if used_by:
        lines += ["Used by: " + ", ".join(f"`{p}`" for p in used_by) + ".", ""]
    props = model.model_json_schema().get("properties", {})
    rows = []
    for fname, field in model.model_fields.items():
        typ = _type_cell(field.annotation, props.get(fname, {}))
        text = field.description or FIELD_NOTES.get(f"{model.__name__}.{fname}", "")
        links = [f"[`{m.__name__}`](#{m.__name__.lower()})" for m, _ in _nested_models(field.annotation)]
        if links:
            text = f"{text} See {', '.join(dict.fromkeys(links))}.".strip()
        rows.append((f"`{fname}`", typ, default_text(field), text))
    return [*lines, *_table(("field", "type", "default", "description"), rows), ""]


def spec_fields_markdown() -> list[str]:
    """One table per spec model: every field with its type, constraints, default and description."""
    lines = ["## Spec fields", "",
             "Unknown keys are errors everywhere (typos are caught). A component (`dataset`, `model`, "
             "each entry of `debiasers`, `generators`, `metrics`) may also be written as its plugin name "
             "alone, e.g. `metrics: [group_metrics]`.", ""]
    for model, used_by in _spec_models():
        lines += _model_section(model, used_by)
    return lines


# ---------------------------------------------------------------- plugins
def _traits(cls: type) -> list[str]:
    out = []
    if getattr(cls, "family", "") in ("models", "debiasers"):
        out.append("inputs: " + ", ".join(sorted(getattr(cls, "modalities", ()))))
    if getattr(cls, "family", "") == "debiasers":
        out.append(f"stage: {getattr(cls, 'stage', 'pre')}")
    if getattr(cls, "family", "") == "metrics":
        out.append("needs: " + ", ".join(sorted(getattr(cls, "requires", ()))))
    if getattr(cls, "family", "") == "generators":
        out.append(f"counterfactuals: {'yes' if getattr(cls, 'supports_counterfactuals', False) else 'no'}")
    return out


def plugin_markdown(name: str, entry: Entry, family: str, heading: str = "####") -> list[str]:
    """A plugin's description and its parameter table (from ``fairaudit.params``' model of ``__init__``)."""
    cls = entry.cls
    lines = [f"{heading} `{name}`", ""]
    description = getattr(cls, "description", "") or _first_line(cls.__dict__.get("__doc__"))
    if description:
        lines += [_rst_to_md(description), ""]
    facts = [f"family: {family}", *_traits(cls), f"class `{cls.__module__}.{cls.__qualname__}`"]
    lines += ["- " + "; ".join(facts), f"- in a spec: `{field_of(family).usage.format(name=name)}`", ""]
    try:
        model = params_model(cls)
    except Exception as exc:  # a signature pydantic cannot model: say so, keep the reference going
        return [*lines, f"Parameters could not be read: {type(exc).__name__}: {exc}", ""]
    if not model.model_fields:
        return [*lines, "No parameters.", ""]
    try:
        props = model.model_json_schema().get("properties", {})
    except Exception:  # arbitrary (non-JSON) parameter types: no constraints to show
        props = {}
    docs = param_docs(cls)
    rows = []
    for pname, field in model.model_fields.items():
        typ = _type_cell(field.annotation, props.get(pname, {}))
        rows.append((f"`{pname}`", typ, default_text(field), field.description or docs.get(pname, "")))
    return [*lines, *_table(("parameter", "type", "default", "description"), rows), "", *_outputs_markdown(cls)]


def _outputs_markdown(cls: type) -> list[str]:
    """The results a metric declares with its default parameters: the names thresholds can use."""
    if getattr(cls, "family", None) != "metrics":
        return []
    try:
        outputs = cls().outputs()
    except Exception:  # needs parameters, or declares nothing we can read
        return []
    if not outputs:
        return []
    rows = [(f"`{o.name}`", o.role, "yes" if o.headline else "", o.derived_from or "", "yes" if o.variant else "")
            for o in outputs]
    return ["Results (with default parameters; a threshold names one of these):", "",
            *_table(("result", "role", "headline", "derived from", "variant"), rows), ""]


def _is_builtin(entry: Entry) -> bool:
    from fairaudit.plugins import BUILTIN_PLUGINS

    return entry.source.plugin in BUILTIN_PLUGINS


def builtin_plugins_markdown(plugins: PluginSet) -> list[str]:
    """The built-in plugins (registered by the core distribution), by family."""
    lines = ["## Built-in plugins", "",
             "Registered by `fairaudit` itself through the same hooks as third-party plugins.", ""]
    for family in SPEC_FAMILIES:
        entries = [(n, e) for n, e in plugins.registry(family).items() if _is_builtin(e)]
        if not entries:
            continue
        lines += [f"### {family}", ""]
        for name, entry in entries:
            lines += plugin_markdown(name, entry, family)
    return lines


def _source_title(entry: Entry) -> str:
    src = entry.source
    if src.distribution:
        return f"`{src.distribution}` {src.version or ''} (entry point `{src.plugin}`)".replace("  ", " ")
    return f"local file `{src.plugin}`"


def installed_plugins_markdown(plugins: PluginSet) -> list[str]:
    """Plugins from other distributions (and local files), grouped by where they come from."""
    by_source: dict[str, list[tuple[str, str, Entry]]] = {}
    for family in SPEC_FAMILIES:
        for name, entry in plugins.registry(family).items():
            if not _is_builtin(entry):
                by_source.setdefault(_source_title(entry), []).append((family, name, entry))
    lines = ["## Installed plugins", ""]
    if not by_source:
        lines += ["No third-party plugin is installed (or autoloading is off).", ""]
    for source in sorted(by_source):
        lines += [f"### From {source}", ""]
        for family, name, entry in by_source[source]:
            lines += plugin_markdown(name, entry, family)
    if plugins.failures:
        lines += ["## Plugins that failed to load", ""]
        lines += [f"- `{f.name}` ({f.distribution or 'local'}): {_cell(f.error)}" for f in plugins.failures]
        lines.append("")
    return lines


def core_markdown(plugins: PluginSet) -> str:
    """The part of the reference that depends only on the core: spec fields and built-in plugins."""
    return "\n".join([CORE_BEGIN, "", *spec_fields_markdown(), *builtin_plugins_markdown(plugins), CORE_END])


def spec_markdown(plugins: PluginSet | None = None) -> str:
    """The full spec reference as markdown (what ``fairaudit schema --format markdown`` prints)."""
    from fairaudit.plugins import load_plugins

    plugins = plugins or load_plugins()
    head = [
        "# Spec reference", "",
        f"<!-- Generated by `{REGENERATE}`; do not edit by hand. -->", "",
        "An audit spec is a YAML file validated against the pydantic models in `fairaudit/spec/models.py`; "
        "each plugin's `params` are validated against its class's `__init__` signature "
        "(`fairaudit/params.py`). Types use Python notation; defaults are JSON/YAML values (`null`: not set); "
        "`required` fields have no default. Regenerate this page with", "",
        f"    {REGENERATE}", "",
        "The spec fields and built-in plugins come from the core alone; the installed-plugins part lists "
        "whatever was installed where the page was generated. `fairaudit schema` (no option) prints the "
        "same information as JSON Schema.", "",
    ]
    return "\n".join([*head, core_markdown(plugins), "", *installed_plugins_markdown(plugins)]).rstrip() + "\n"


def core_part(markdown: str) -> str:
    """The text between :data:`CORE_BEGIN` and :data:`CORE_END` (inclusive); empty when absent."""
    start, end = markdown.find(CORE_BEGIN), markdown.find(CORE_END)
    if start < 0 or end < start:
        return ""
    return markdown[start:end + len(CORE_END)]
