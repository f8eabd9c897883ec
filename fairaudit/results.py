"""Schema-versioned result objects written to ``result.json`` (the report is rendered from them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RESULT_SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GroupValue(_Model):
    """A metric's value for one group, with its bootstrap CI."""

    attribute: str
    group: str
    n: int
    n_pos: int | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    too_small: bool = False


class MetricResult(_Model):
    """One metric of one arm for one sensitive attribute (or intersection)."""

    metric: str
    plugin: str
    attribute: str | None = None
    label: str | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    higher_is_better: bool | None = None
    status: Literal["ok", "too_small", "error", "not_applicable"] = "ok"
    per_group: list[GroupValue] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


class Verdict(_Model):
    """A declared threshold judged with the CI in view."""

    arm: str
    metric: str
    attribute: str | None
    min: float | None = None
    max: float | None = None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    outcome: Literal["pass", "fail", "inconclusive", "too_small", "missing"]
    reason: str = ""


class ArmResult(_Model):
    """The baseline, or one mitigation (debiaser or generator), evaluated on the test split."""

    name: str
    kind: Literal["baseline", "debiaser", "generator"]
    plugin: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    traceback: str | None = None
    metrics: list[MetricResult] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    artefacts: dict[str, str] = Field(default_factory=dict)
    sections: list[dict[str, Any]] = Field(default_factory=list)
    #: Change from the baseline (this arm minus the baseline) with paired-bootstrap CIs:
    #: ``roc_auc``, ``worst_group_auc`` and, per attribute, ``equal_opportunity_difference``.
    versus_baseline: list[MetricResult] = Field(default_factory=list)

    def metric(self, metric: str, attribute: str | None = None) -> MetricResult | None:
        """The first result named ``metric`` (for ``attribute`` when given)."""
        for m in self.metrics:
            if m.metric == metric and (attribute is None or m.attribute == attribute):
                return m
        return None


class AuditResult(_Model):
    """Everything a report needs; written to ``result.json``."""

    schema_version: int = RESULT_SCHEMA_VERSION
    name: str
    title: str
    created: str
    dataset: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    arms: list[ArmResult] = Field(default_factory=list)
    verdicts: list[Verdict] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    provenance: dict[str, Any] = Field(default_factory=dict)
    spec_text: str = ""

    def arm(self, name: str) -> ArmResult | None:
        return next((a for a in self.arms if a.name == name), None)
