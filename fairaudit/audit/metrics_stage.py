"""Every metric of the spec on one arm, on the test split (a failing metric becomes an error
result; the other metrics go on)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fairaudit.audit.arm import Arm
from fairaudit.audit.heartbeat import heartbeat
from fairaudit.base import BaseMetric, CounterfactualSets, MetricContext
from fairaudit.results import MetricResult
from fairaudit.spec.models import Component

if TYPE_CHECKING:
    from fairaudit.audit.state import RunState

LOG = logging.getLogger("fairaudit")
Metrics = list[tuple[Component, BaseMetric]]


def create_metrics(state: RunState) -> Metrics:
    """The spec's metric plugins, bound to the run."""
    return [(comp, state.create("metrics", comp)) for comp in state.spec.metrics]


def compute_metrics(state: RunState, arm: Arm, metrics: Metrics) -> list[MetricResult]:
    """The results of every metric that applies to ``arm``; each metric's time is recorded as
    ``<arm>.metrics.<metric>`` and announced on the console as it starts (``metric X (k/M)``),
    then every 30 s while it runs."""
    ctx = metric_context(state, arm)
    name = arm.result.name
    results: list[MetricResult] = []
    applying = [(comp, metric) for comp, metric in metrics if applies(metric, arm, ctx)]
    for k, (comp, metric) in enumerate(applying, start=1):
        what = f"metric {comp.arm_name} ({k}/{len(applying)})"
        state.say_arm(name, what)
        with heartbeat(lambda msg: state.say_arm(name, msg), what):  # a long metric never looks stuck
            results += state.log.timed(f"{name}.metrics.{comp.arm_name}",
                                       lambda c=comp, m=metric: _compute(c, m, ctx, name))
    return results


def metric_context(state: RunState, arm: Arm) -> MetricContext:
    """What the metrics see of ``arm`` on the test split."""
    s, spec = state.splits, state.spec
    return MetricContext(
        y_true=s.test.y, sensitive=s.test.sensitive, patient_ids=s.test.patient_ids,
        y_score=arm.scores_test, threshold=spec.decision_threshold,
        attributes=list(spec.attributes), intersections=[list(c) for c in spec.intersections],
        stats=state.stats, features=arm.repr_test, features_train=arm.repr_train, features_name=arm.repr_name,
        y_train=arm.y_train, sensitive_train=arm.sensitive_train, extras=s.test.extras,
        val_y_true=s.val.y if s.val is not None else None, val_y_score=arm.scores_val,
        images=s.test.images,
        counterfactuals=CounterfactualSets(oracle=state.oracle_counterfactuals(), generated=arm.counterfactuals),
        predict_fn=arm.predict_fn, artefact_oracle=s.test.meta.get("artefact_oracle"),
        context=state.context)


def needs_features(state: RunState) -> bool:
    """Whether a metric of the spec reads a representation (probes)."""
    registry = state.plugins.registry("metrics")
    return any("features" in registry.get(comp.name).requires for comp in state.spec.metrics)


def applies(metric: BaseMetric, arm: Arm, ctx: MetricContext) -> bool:
    """Whether the arm has what ``metric`` requires (features, counterfactuals, scores)."""
    needs = set(metric.requires)
    if "features" in needs and arm.repr_test is None:
        return False
    if "counterfactuals" in needs and (not ctx.counterfactuals or ctx.predict_fn is None):
        return False
    return not ("scores" in needs and arm.scores_test is None)


def _compute(comp: Component, metric: BaseMetric, ctx: MetricContext, arm_name: str) -> list[MetricResult]:
    try:
        return metric.compute(ctx)
    except Exception as exc:
        LOG.exception("metric %s failed on arm %s", comp.name, arm_name)
        return [MetricResult(metric=comp.arm_name, plugin=comp.name, status="error",
                             notes=[f"{type(exc).__name__}: {exc}"])]
