"""The arm plans of a spec, in order: the baseline, each debiaser, each generator."""

from __future__ import annotations

from fairaudit.audit.arm import ArmPlan
from fairaudit.audit.baseline_plan import BaselinePlan
from fairaudit.audit.debiaser_plan import DebiaserPlan
from fairaudit.audit.generator_plan import GeneratorPlan
from fairaudit.spec.models import AuditSpec


def plan_arms(spec: AuditSpec) -> list[ArmPlan]:
    """One plan per arm entry of ``spec``; the index seeds the arm and names its files."""
    plans: list[ArmPlan] = [BaselinePlan(0, spec.model)]
    plans += [DebiaserPlan(len(plans) + i, c) for i, c in enumerate(spec.debiasers)]
    plans += [GeneratorPlan(len(plans) + i, c) for i, c in enumerate(spec.generators)]
    return plans


__all__ = ["ArmPlan", "BaselinePlan", "DebiaserPlan", "GeneratorPlan", "plan_arms"]
