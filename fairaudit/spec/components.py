"""Where a spec names plugins: the spec field of each plugin family, and the two ways of writing
a component (``name`` alone, or a mapping with ``name``, ``label`` and ``params``).

The one place that maps spec fields to plugin families: the models, the loader's best-effort
checks, the spec reference and the runner all read :data:`COMPONENT_FIELDS`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ComponentField:
    """A spec field that names plugins of one family."""

    field: str
    family: str
    many: bool  # a list of components (else exactly one)

    @property
    def usage(self) -> str:
        """How a plugin ``{name}`` of this family is written in a spec (a ``str.format`` pattern)."""
        if self.field == "metrics":
            return "metrics: [{name}]"
        one = "{{name: {name}}}"  # a format pattern: braces doubled
        return f"{self.field}: [{one}]" if self.many else f"{self.field}: {one}"


#: Spec fields that name plugins, in the order of the spec (and of the reference).
COMPONENT_FIELDS: tuple[ComponentField, ...] = (
    ComponentField("dataset", "datasets", many=False),
    ComponentField("model", "models", many=False),
    ComponentField("debiasers", "debiasers", many=True),
    ComponentField("generators", "generators", many=True),
    ComponentField("metrics", "metrics", many=True),
)
#: Plugin families a spec can name, in the order of :data:`COMPONENT_FIELDS`.
SPEC_FAMILIES: tuple[str, ...] = tuple(f.family for f in COMPONENT_FIELDS)


def field_of(family: str) -> ComponentField:
    """The spec field that names plugins of ``family``."""
    return next(f for f in COMPONENT_FIELDS if f.family == family)


def normalise_component(value: Any) -> Any:
    """A component as a mapping: a bare plugin name ``"x"`` becomes ``{"name": "x"}``; anything
    else is returned as it is (for the model to validate)."""
    return {"name": value} if isinstance(value, str) else value


def raw_components(plain: dict[str, Any]) -> Iterator[tuple[str, tuple[Any, ...], str, dict[str, Any]]]:
    """``(family, location, name, params)`` of every well-formed component in unvalidated spec
    data (so plugin problems can be reported together with the spec's other problems)."""
    for spec_field in COMPONENT_FIELDS:
        value = plain.get(spec_field.field)
        items = value if isinstance(value, list) else [value] if value is not None else []
        for i, item in enumerate(items):
            loc: tuple[Any, ...] = (spec_field.field, i) if isinstance(value, list) else (spec_field.field,)
            comp = normalise_component(item)
            if not isinstance(comp, dict):
                continue
            name, params = comp.get("name"), comp.get("params", {})
            if isinstance(name, str) and isinstance(params, dict):
                yield spec_field.family, loc, name, params
