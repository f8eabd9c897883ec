"""Hook specifications of the ``fairaudit`` plugin system.

Every hook receives a :class:`~fairaudit.registry.Registry` for one family and
registers classes with ``registry.add(MyClass)``; ``MyClass.name`` becomes the YAML key.
Built-in plugins use exactly these hooks.  Implement them with ``@fairaudit.hookimpl``
in the module named by your ``[project.entry-points.fairaudit]`` entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from fairaudit.registry import Registry

PROJECT = "fairaudit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def fairaudit_register_datasets(registry: Registry) -> None:
    """Register dataset loaders (subclasses of :class:`fairaudit.base.BaseDatasetLoader`)."""


@hookspec
def fairaudit_register_models(registry: Registry) -> None:
    """Register downstream classifiers (subclasses of :class:`fairaudit.base.BaseModel`)."""


@hookspec
def fairaudit_register_debiasers(registry: Registry) -> None:
    """Register debiasers (subclasses of :class:`fairaudit.base.BaseDebiaser`)."""


@hookspec
def fairaudit_register_generators(registry: Registry) -> None:
    """Register image generators (subclasses of :class:`fairaudit.base.BaseGenerator`)."""


@hookspec
def fairaudit_register_metrics(registry: Registry) -> None:
    """Register metrics (subclasses of :class:`fairaudit.base.BaseMetric`)."""


@hookspec
def fairaudit_register_report_sections(registry: Registry) -> None:
    """Register report sections (subclasses of :class:`fairaudit.base.BaseReportSection`)."""
