"""Built-in models plugins."""

from __future__ import annotations

from fairaudit.hookspecs import hookimpl
from fairaudit.registry import Registry


@hookimpl
def fairaudit_register_models(registry: Registry) -> None:
    """Register the built-in models."""
