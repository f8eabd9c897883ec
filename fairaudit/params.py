"""Parameter models for plugins, built from each plugin class's ``__init__`` signature."""

from __future__ import annotations

import inspect
import typing
from functools import cache
from typing import Any

import pydantic
from pydantic import ConfigDict


@cache
def params_model(cls: type) -> type[pydantic.BaseModel]:
    """A strict pydantic model of ``cls.__init__``'s keyword parameters.

    A plugin may instead define ``Params: ClassVar[type[BaseModel]]`` for richer constraints.
    """
    explicit = cls.__dict__.get("Params")
    if isinstance(explicit, type) and issubclass(explicit, pydantic.BaseModel):
        return explicit
    signature = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__, include_extras=True)  # Annotated validators kept
    except Exception:  # unresolvable annotations: fall back to Any
        hints = {}
    fields: dict[str, Any] = {}
    for pname, param in signature.parameters.items():
        if pname == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    return pydantic.create_model(  # type: ignore[call-overload,no-any-return]
        f"{cls.__name__}Params",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )


def validate_params(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Validate ``params`` for ``cls``; returns only the explicitly given, coerced values."""
    model = params_model(cls)
    validated = model.model_validate(params)
    return {k: getattr(validated, k) for k in params}


def param_schema(cls: type) -> dict[str, Any]:
    """JSON Schema of a plugin's parameters."""
    return params_model(cls).model_json_schema()
