"""fairaudit: audit and mitigate demographic bias in medical-imaging AI.

Public API for users and plugin authors.
"""

from fairaudit.base import (
    BaseDatasetLoader,
    BaseDebiaser,
    BaseGenerator,
    BaseMetric,
    BaseModel,
    BaseReportSection,
    MetricContext,
    MetricOutput,
    PairedContext,
    RunContext,
    StatsConfig,
)
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError, FairAuditError, PluginError, SpecError
from fairaudit.hookspecs import hookimpl
from fairaudit.results import ArmResult, AuditResult, GroupValue, MetricResult

__version__ = "0.1.0"

__all__ = [
    "ArmResult",
    "AuditDataset",
    "AuditResult",
    "BaseDatasetLoader",
    "BaseDebiaser",
    "BaseGenerator",
    "BaseMetric",
    "BaseModel",
    "BaseReportSection",
    "DataError",
    "FairAuditError",
    "GroupValue",
    "MetricContext",
    "MetricOutput",
    "MetricResult",
    "PairedContext",
    "PluginError",
    "RunContext",
    "SpecError",
    "StatsConfig",
    "__version__",
    "hookimpl",
]
