"""Every result a built-in metric emits is one it declared in ``outputs()``, with the same role."""

from __future__ import annotations

import pandas as pd
import pytest
from _metrics_data import binary_case, context

from fairaudit.builtin.metrics.group_metrics import GroupMetrics

PARAMS = [
    {},
    {"ratios": False, "to_overall": False, "curves": False},
    {"metrics": ["true_positive_rate", "selection_rate", "roc_auc"]},
]


@pytest.mark.parametrize("params", PARAMS, ids=["defaults", "no-variants", "subset"])
def test_group_metrics_emit_exactly_what_they_declare(params: dict[str, object]) -> None:
    y, score, _, g = binary_case(seed=1, n=700)
    sens = pd.DataFrame({"site": g, "sex": (g == "A").astype(str)})
    ctx = context(y, score, sens, attributes=["site", "sex"], n_boot=20, n_permutations=20,
                  intersections=[["site", "sex"]], val_y_true=y, val_y_score=score)
    metric = GroupMetrics(**params)  # type: ignore[arg-type]
    declared = {o.name: o for o in metric.outputs()}
    emitted = [r for r in metric.compute(ctx) if r.status != "not_applicable"]
    assert {r.metric for r in emitted} == set(declared)
    for r in emitted:
        d = declared[r.metric]
        assert (r.role, r.headline, r.derived_from, r.variant) == (d.role, d.headline, d.derived_from, d.variant)
    roles = {r.metric: r.role for r in emitted}
    assert roles["equal_opportunity_difference"] == "gap" and roles["roc_auc"] == "value"
    headline = {r.metric for r in emitted if r.headline}
    assert headline == {"roc_auc", "worst_group_auc", "equal_opportunity_difference"}


def test_paired_changes_are_offered_by_group_metrics_only_for_what_it_emits() -> None:
    from fairaudit.base import PairedContext, StatsConfig

    y, score, _, g = binary_case(seed=2, n=600, groups=("A", "B"), tpr=(0.8, 0.6), fpr=(0.2, 0.2))
    sens = pd.DataFrame({"site": g})
    ctx = PairedContext(y_true=y, scores={"baseline": score, "other": score[::-1].copy()}, sensitive=sens,
                        patient_ids=None, attributes=["site"],  # type: ignore[arg-type]
                        stats=StatsConfig(n_boot=50, min_group_size=10, min_group_positives=5))
    assert GroupMetrics.offers_paired_changes()
    full = {c.metric for c in GroupMetrics().paired_changes(ctx)["other"]}
    assert full == {"roc_auc", "worst_group_auc", "equal_opportunity_difference"}
    only_rates = GroupMetrics(metrics=["true_positive_rate"]).paired_changes(ctx)["other"]
    assert [c.metric for c in only_rates] == ["equal_opportunity_difference"]
    assert all(c.role == "change" and c.derived_from == c.metric for c in only_rates)
