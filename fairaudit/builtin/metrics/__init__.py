"""Built-in metrics plugins."""

from __future__ import annotations

from fairaudit.hookspecs import hookimpl
from fairaudit.registry import Registry


@hookimpl
def fairaudit_register_metrics(registry: Registry) -> None:
    """Register the built-in metrics."""
