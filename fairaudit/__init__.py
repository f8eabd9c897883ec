"""fairaudit: audit and mitigate demographic bias in medical-imaging AI.

Public API for users and plugin authors: the names in ``__all__``, plus the documented modules
:mod:`fairaudit.training` (torch helpers), :mod:`fairaudit.lazy_images` (streamed images),
:mod:`fairaudit.imaging` (image grids for report figures), :mod:`fairaudit.stats` (bootstrap
CIs, permutation tests) and :mod:`fairaudit.testing` (conformance kit and fixtures).
Everything else is internal (docs/architecture.md).

In a notebook: ``fairaudit.audit_predictions(df, target=..., score=..., sensitive=[...])`` audits
a model's scores; ``fairaudit.run(spec)`` runs any spec (a dict or a YAML file).

The names are imported on first use (PEP 562), so ``import fairaudit`` imports none of pandas,
scikit-learn or torch and the command line starts in a fraction of a second.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "ArmResult": "fairaudit.results",
    "AuditDataset": "fairaudit.data",
    "AuditResult": "fairaudit.results",
    "BaseDatasetLoader": "fairaudit.base",
    "BaseDebiaser": "fairaudit.base",
    "BaseGenerator": "fairaudit.base",
    "BaseInProcessor": "fairaudit.base",
    "BaseMetric": "fairaudit.base",
    "BaseModel": "fairaudit.base",
    "BasePostProcessor": "fairaudit.base",
    "BaseReportSection": "fairaudit.base",
    "CounterfactualSets": "fairaudit.base",
    "CheckpointError": "fairaudit.errors",
    "DataError": "fairaudit.errors",
    "DeviceError": "fairaudit.errors",
    "FairAuditError": "fairaudit.errors",
    "GroupValue": "fairaudit.results",
    "MetricContext": "fairaudit.base",
    "MetricOutput": "fairaudit.base",
    "PairedContext": "fairaudit.base",
    "MetricResult": "fairaudit.results",
    "PluginError": "fairaudit.errors",
    "Registry": "fairaudit.registry",
    "RunContext": "fairaudit.base",
    "SpecError": "fairaudit.errors",
    "StatsConfig": "fairaudit.base",
    "TrainingError": "fairaudit.errors",
    "audit_predictions": "fairaudit.api",
    "hookimpl": "fairaudit.hookspecs",
    "load_plugins": "fairaudit.plugins",
    "run": "fairaudit.api",
    "run_audit": "fairaudit.audit.runner",
    "validate_params": "fairaudit.params",
}

__all__ = [
    "ArmResult",
    "AuditDataset",
    "AuditResult",
    "BaseDatasetLoader",
    "BaseDebiaser",
    "BaseGenerator",
    "BaseInProcessor",
    "BaseMetric",
    "BaseModel",
    "BasePostProcessor",
    "BaseReportSection",
    "CheckpointError",
    "CounterfactualSets",
    "DataError",
    "DeviceError",
    "FairAuditError",
    "GroupValue",
    "MetricContext",
    "MetricOutput",
    "MetricResult",
    "PairedContext",
    "PluginError",
    "Registry",
    "RunContext",
    "SpecError",
    "StatsConfig",
    "TrainingError",
    "__version__",
    "audit_predictions",
    "hookimpl",
    "load_plugins",
    "run",
    "run_audit",
    "validate_params",
]

if TYPE_CHECKING:
    from fairaudit.api import audit_predictions, run
    from fairaudit.audit.runner import run_audit
    from fairaudit.base import (
        BaseDatasetLoader,
        BaseDebiaser,
        BaseGenerator,
        BaseInProcessor,
        BaseMetric,
        BaseModel,
        BasePostProcessor,
        BaseReportSection,
        CounterfactualSets,
        MetricContext,
        MetricOutput,
        PairedContext,
        RunContext,
        StatsConfig,
    )
    from fairaudit.data import AuditDataset
    from fairaudit.errors import (
        CheckpointError,
        DataError,
        DeviceError,
        FairAuditError,
        PluginError,
        SpecError,
        TrainingError,
    )
    from fairaudit.hookspecs import hookimpl
    from fairaudit.params import validate_params
    from fairaudit.plugins import load_plugins
    from fairaudit.registry import Registry
    from fairaudit.results import ArmResult, AuditResult, GroupValue, MetricResult


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it in the module's namespace."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fairaudit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    submodules = {k for k, v in globals().items() if isinstance(v, ModuleType) and v.__name__.startswith("fairaudit.")}
    return sorted({*__all__, *submodules})
