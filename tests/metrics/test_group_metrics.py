"""The ``group_metrics`` plugin: result layout, too-small groups and edge cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _metrics_data import binary_case, context

from fairaudit.base import StatsConfig
from fairaudit.builtin.metrics.group_metrics import GroupMetrics
from fairaudit.errors import DataError
from fairaudit.results import MetricResult
from fairaudit.stats import threshold_at_specificity


def _by(results: list[MetricResult], attribute: str | None = None) -> dict[str, MetricResult]:
    return {r.metric: r for r in results if attribute is None or r.attribute == attribute}


def _run(y, score, sens, attributes, **params):
    stats = params.pop("stats", None)
    ctx = context(
        y,
        score,
        sens,
        attributes=attributes,
        n_boot=100,
        n_permutations=99,
        **({"stats": stats} if stats else {}),
        **params.pop("ctx", {}),
    )
    return GroupMetrics(**params).compute(ctx)


def test_layout_cis_pvalues_and_json(case3) -> None:
    y, score, _, g = case3
    res = _run(
        y,
        score,
        pd.DataFrame({"site": g}),
        ["site"],
        curves=True,
        ctx={"val_y_true": y[:300], "val_y_score": score[:300]},
    )
    by = _by(res)
    for name in (
        "true_positive_rate",
        "equal_opportunity_difference",
        "equalized_odds_difference",
        "demographic_parity_ratio",
        "roc_auc",
        "auc_difference",
        "worst_group_auc",
        "expected_calibration_error",
        "sensitivity_at_specificity",
        "roc_curve",
        "calibration_curve",
        "equal_opportunity_difference_signed",
        "positive_predictive_value_difference",
    ):
        assert name in by, name
    eod = by["equal_opportunity_difference"]
    assert eod.status == "ok" and eod.ci_low <= eod.value <= eod.ci_high
    assert eod.p_value is not None and eod.p_value < 0.05  # TPRs 0.8 / 0.7 / 0.6
    assert eod.higher_is_better is False and eod.label
    assert any("max − min" in n for n in eod.notes) and any("score >= 0.5" in n for n in eod.notes)
    tpr = by["true_positive_rate"]
    assert [gv.group for gv in tpr.per_group] == ["A", "B", "C"]
    for gv in tpr.per_group:
        assert gv.ci_low <= gv.value <= gv.ci_high and not gv.too_small
    assert by["equal_opportunity_ratio"].p_value is None  # one p-value per tested gap (BH count)
    curves = by["roc_curve"].details["curves"]
    assert set(curves) == {"A", "B", "C"}
    assert (
        len(curves["A"]["fpr"]) <= 101
        and curves["A"]["fpr"][0] == 0.0
        and curves["A"]["tpr"][-1] == 1.0
    )
    cal = by["calibration_curve"].details["curves"]["B"]
    assert set(cal) == {"mean_predicted", "fraction_positive", "count"}
    json.dumps([r.model_dump() for r in res], allow_nan=False)  # JSON-serialisable, no NaN


def test_deterministic_given_seed(case3) -> None:
    y, score, _, g = case3
    a = _run(y, score, pd.DataFrame({"site": g}), ["site"], curves=False)
    b = _run(y, score, pd.DataFrame({"site": g}), ["site"], curves=False)
    assert [(r.value, r.ci_low, r.p_value) for r in a] == [
        (r.value, r.ci_low, r.p_value) for r in b
    ]


def test_intersections() -> None:
    y, score, _, g = binary_case(seed=2, n=1200)
    rng = np.random.default_rng(0)
    sens = pd.DataFrame({"site": g, "sex": rng.choice(["F", "M"], len(y))})
    res = _run(
        y,
        score,
        sens,
        ["site", "sex"],
        ctx={"intersections": [["site", "sex"]]},
        curves=False,
        metrics=["true_positive_rate"],
    )
    inter = _by(res, "site&sex")
    groups = [gv.group for gv in inter["true_positive_rate"].per_group]
    assert groups == ["A&F", "A&M", "B&F", "B&M", "C&F", "C&M"]
    assert sum(gv.n for gv in inter["true_positive_rate"].per_group) == len(y)


def test_group_of_one_and_small_group_left_out(case3) -> None:
    y, score, _, g = case3
    g = g.copy()
    g[0] = "Z"  # a group of one
    res = _run(y, score, pd.DataFrame({"site": g}), ["site"], curves=False)
    by = _by(res)
    z = next(gv for gv in by["true_positive_rate"].per_group if gv.group == "Z")
    assert z.too_small and z.n == 1
    eod = by["equal_opportunity_difference"]
    assert eod.status == "ok" and eod.details["groups"] == ["A", "B", "C"]
    assert any("'Z'" in n for n in eod.notes)


def test_gap_too_small_when_fewer_than_two_groups_judgeable() -> None:
    rng = np.random.default_rng(0)
    n = 220
    g = np.array(["big"] * 200 + ["tiny"] * 20, dtype=object)
    y = rng.integers(0, 2, n)
    y[200:] = 0
    y[200:203] = 1  # 3 positives < min_group_positives=5
    score = rng.random(n)
    res = _run(y, score, pd.DataFrame({"g": g}), ["g"], curves=False)
    by = _by(res)
    assert by["equal_opportunity_difference"].status == "too_small"
    assert by["equal_opportunity_difference"].value is None
    assert by["equalized_odds_difference"].status == "too_small"
    assert by["auc_difference"].status == "too_small"
    assert by["demographic_parity_difference"].status == "ok"  # needs rows, not positives
    tiny = next(gv for gv in by["true_positive_rate"].per_group if gv.group == "tiny")
    assert tiny.too_small and tiny.n_pos == 3


def test_group_with_no_positives() -> None:
    y, score, _, g = binary_case(seed=4, n=600)
    y = y.copy()
    y[g == "C"] = 0
    res = _run(y, score, pd.DataFrame({"site": g}), ["site"], curves=True)
    by = _by(res)
    c = next(gv for gv in by["true_positive_rate"].per_group if gv.group == "C")
    assert c.too_small and c.value is None and c.n_pos == 0  # undefined, not fairlearn's 0
    assert by["equal_opportunity_difference"].details["groups"] == ["A", "B"]
    assert "C" not in by["roc_curve"].details["curves"]
    c_auc = next(gv for gv in by["roc_auc"].per_group if gv.group == "C")
    assert c_auc.value is None and c_auc.too_small


def test_all_same_predictions(case3) -> None:
    y, _, _, g = case3
    score = np.full(len(y), 0.3)  # nobody predicted positive
    res = _run(y, score, pd.DataFrame({"site": g}), ["site"], curves=False)
    by = _by(res)
    assert by["selection_rate"].value == 0.0
    assert by["demographic_parity_difference"].value == 0.0
    assert by["demographic_parity_ratio"].value is None  # 0/0, as fairlearn (NaN)
    assert by["demographic_parity_ratio"].status == "not_applicable"
    assert by["positive_predictive_value_difference"].status == "too_small"
    assert all(gv.value == 0.5 for gv in by["roc_auc"].per_group)  # all ties
    assert by["auc_difference"].value == 0.0


def test_nan_scores_raise_a_clear_error(case3) -> None:
    y, score, _, g = case3
    score = score.copy()
    score[5] = np.nan
    with pytest.raises(DataError, match="NaN"):
        _run(y, score, pd.DataFrame({"site": g}), ["site"])


def test_integer_labels_and_missing_values(case3) -> None:
    y, score, _, g = case3
    codes = pd.Series([{"A": 0, "B": 1, "C": 2}[x] for x in g], dtype="Int64")
    codes[:40] = pd.NA
    res = _run(
        y, score, pd.DataFrame({"site": codes}), ["site"], curves=False, metrics=["selection_rate"]
    )
    names = [gv.group for gv in _by(res)["selection_rate"].per_group]
    assert names == ["0", "1", "2", "(missing)"]  # numeric order, the missing group last
    dropped = _run(
        y,
        score,
        pd.DataFrame({"site": codes}),
        ["site"],
        curves=False,
        metrics=["selection_rate"],
        missing_attribute="drop",
    )
    sel = _by(dropped)["selection_rate"]
    assert [gv.group for gv in sel.per_group] == ["0", "1", "2"]
    assert sum(gv.n for gv in sel.per_group) == len(y) - 40


def test_continuous_attribute_refused() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    res = _run(y, rng.random(300), pd.DataFrame({"age": rng.uniform(20, 90, 300)}), ["age"])
    assert len(res) == 1 and res[0].status == "not_applicable" and "bin it" in res[0].notes[0]


def test_sensitivity_at_specificity_uses_validation_threshold(case3) -> None:
    y, score, _, g = case3
    rng = np.random.default_rng(1)
    val_y = rng.integers(0, 2, 500)
    val_s = np.clip(0.3 * val_y + 0.7 * rng.random(500), 0, 1)
    t = threshold_at_specificity(val_y, val_s, 0.9)
    assert np.mean(val_s[val_y == 0] < t) >= 0.9
    assert np.mean(val_s[val_y == 0] < np.nextafter(t, -1)) < 0.9  # the lowest such threshold
    res = _run(
        y,
        score,
        pd.DataFrame({"site": g}),
        ["site"],
        curves=False,
        target_specificity=0.9,
        metrics=["sensitivity_at_specificity"],
        ctx={"val_y_true": val_y, "val_y_score": val_s},
    )
    r = _by(res)["sensitivity_at_specificity"]
    assert r.details["threshold"] == t
    assert r.value == pytest.approx(np.mean(score[y == 1] >= t))
    no_val = _run(
        y,
        score,
        pd.DataFrame({"site": g}),
        ["site"],
        curves=False,
        metrics=["sensitivity_at_specificity"],
    )
    assert no_val[0].status == "not_applicable"


def test_threshold_at_specificity_exact() -> None:
    y = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.35, 0.9])
    t = threshold_at_specificity(y, s, 0.75)  # 3 of 4 negatives below t
    assert 0.3 < t <= 0.35
    assert np.mean(s[y == 1] >= t) == 1.0


def test_patient_ids_widen_intervals(case3) -> None:
    y, score, _, g = case3
    rep = 3
    yy, ss, gg = np.repeat(y, rep), np.repeat(score, rep), np.repeat(g, rep)
    stats = StatsConfig(n_boot=300, n_permutations=0, min_group_size=10, min_group_positives=5)
    rows = _by(
        _run(
            yy,
            ss,
            pd.DataFrame({"site": gg}),
            ["site"],
            curves=False,
            stats=stats,
            metrics=["true_positive_rate"],
            ctx={"patient_ids": np.arange(len(yy))},
        )
    )
    pats = _by(
        _run(
            yy,
            ss,
            pd.DataFrame({"site": gg}),
            ["site"],
            curves=False,
            stats=stats,
            metrics=["true_positive_rate"],
            ctx={"patient_ids": np.repeat(np.arange(len(y)), rep)},
        )
    )
    w_rows = (
        rows["equal_opportunity_difference"].ci_high - rows["equal_opportunity_difference"].ci_low
    )
    w_pats = (
        pats["equal_opportunity_difference"].ci_high - pats["equal_opportunity_difference"].ci_low
    )
    assert w_pats > 1.3 * w_rows
    assert pats["equal_opportunity_difference"].p_value is None  # n_permutations=0


def test_conformance_kit_and_registration() -> None:
    from fairaudit.registry import Registry
    from fairaudit.testing import check_metric

    check_metric(GroupMetrics)
    reg = Registry("metrics")
    from fairaudit.builtin.metrics import fairaudit_register_metrics

    fairaudit_register_metrics(reg)
    assert reg.get("group_metrics") is GroupMetrics
    for name in ("attribute_probe", "attack_probe", "scls"):
        assert reg.get(name).name == name


def test_without_resampling_values_stand_alone(case3) -> None:
    y, score, _, g = case3
    stats = StatsConfig(n_boot=0, n_permutations=0, min_group_size=10, min_group_positives=5)
    by = _by(_run(y, score, pd.DataFrame({"site": g}), ["site"], curves=False, stats=stats))
    eod = by["equal_opportunity_difference"]
    assert eod.value is not None and eod.ci_low is None and eod.p_value is None
    assert by["auc_difference"].value is not None and by["auc_difference"].ci_high is None
