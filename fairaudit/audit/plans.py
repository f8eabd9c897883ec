"""The arm plans of a spec, in order: the baseline, each debiaser, each generator; or, for a
dataset of given scores, one plan per score column."""

from __future__ import annotations

from fairaudit.audit.arm import ArmPlan
from fairaudit.audit.baseline_plan import BaselinePlan
from fairaudit.audit.debiaser_plan import DebiaserPlan
from fairaudit.audit.generator_plan import GeneratorPlan
from fairaudit.audit.predictions_plan import PredictionsPlan, predictions_plans
from fairaudit.data import AuditDataset
from fairaudit.spec.models import AuditSpec


def plan_arms(spec: AuditSpec, dataset: AuditDataset | None = None) -> list[ArmPlan]:
    """One plan per arm entry of ``spec`` (per score column when ``dataset`` holds scores); the
    index seeds the arm and names its files."""
    if dataset is not None and dataset.scores is not None:
        return predictions_plans(spec, dataset)
    plans: list[ArmPlan] = [BaselinePlan(0, spec.model)]
    plans += [DebiaserPlan(len(plans) + i, c) for i, c in enumerate(spec.debiasers)]
    plans += [GeneratorPlan(len(plans) + i, c) for i, c in enumerate(spec.generators)]
    return plans


__all__ = ["ArmPlan", "BaselinePlan", "DebiaserPlan", "GeneratorPlan", "PredictionsPlan", "plan_arms"]
