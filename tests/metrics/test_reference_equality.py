"""Our values equal fairlearn's exactly, and AIF360's where both define the same quantity.

Sign conventions:
* fairlearn differences are unsigned: max − min over groups (``between_groups``) or
  max |group − overall| (``to_overall``); ratios are min/max (≤ 1).  Ours are the same.
* AIF360 differences are signed: value(unprivileged) − value(privileged), "unprivileged" being
  every row whose attribute is not ``priv_group``.  Our ``*_signed`` variants use the same
  convention with an explicit reference (= AIF360's privileged) group.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from _metrics_data import binary_case, context
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)

from fairaudit.builtin.metrics.group_metrics import GroupMetrics
from fairaudit.stats import confusion as cm
from fairaudit.stats import encode_groups, group_confusion_counts


def _ours(y, pred, groups, name, zero_division=0.0):
    g = encode_groups(groups)
    counts = group_confusion_counts(y, pred, g.codes, g.n_groups)
    return g, counts, cm.rate(counts, name, zero_division)


FAIRLEARN_RATES = {
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "true_negative_rate": true_negative_rate,
    "selection_rate": selection_rate,
}


@pytest.mark.parametrize("labels", ["strings", "integers"])
@pytest.mark.parametrize("name", sorted(FAIRLEARN_RATES))
def test_rates_and_gaps_equal_metricframe(labels: str, name: str) -> None:
    y, _, pred, g = binary_case(
        seed=3,
        n=700,
        groups=("A", "B", "C", "D"),
        tpr=(0.9, 0.7, 0.6, 0.5),
        fpr=(0.1, 0.2, 0.3, 0.4),
    )
    if labels == "integers":
        g = np.array([{"A": 3, "B": 10, "C": 2, "D": 7}[x] for x in g])
    mf = MetricFrame(metrics=FAIRLEARN_RATES[name], y_true=y, y_pred=pred, sensitive_features=g)
    enc, counts, ours = _ours(y, pred, g, name)
    assert enc.names == [str(i) for i in mf.by_group.index]
    assert list(ours) == list(mf.by_group.to_numpy())  # exact
    overall = cm.rate(counts.sum(0), name)
    assert overall == mf.overall
    for method in ("between_groups", "to_overall"):
        assert cm.difference(ours, overall, method) == mf.difference(method=method)
        assert cm.ratio(ours, overall, method) == mf.ratio(method=method)


def test_fairness_functions_equal_fairlearn(case3) -> None:
    y, _, pred, g = case3
    enc = encode_groups(g)
    counts = group_confusion_counts(y, pred, enc.codes, enc.n_groups)
    tpr, fpr, sel = (
        cm.rate(counts, n, 0.0)
        for n in ("true_positive_rate", "false_positive_rate", "selection_rate")
    )
    o = {
        n: cm.rate(counts.sum(0), n, 0.0)
        for n in ("true_positive_rate", "false_positive_rate", "selection_rate")
    }
    for method in ("between_groups", "to_overall"):
        kw = {"sensitive_features": g, "method": method}
        d_tpr = cm.difference(tpr, o["true_positive_rate"], method)
        d_fpr = cm.difference(fpr, o["false_positive_rate"], method)
        assert d_tpr == equal_opportunity_difference(y, pred, **kw)
        assert cm.ratio(tpr, o["true_positive_rate"], method) == equal_opportunity_ratio(
            y, pred, **kw
        )
        assert max(d_tpr, d_fpr) == equalized_odds_difference(y, pred, agg="worst_case", **kw)
        assert (d_tpr + d_fpr) / 2 == equalized_odds_difference(y, pred, agg="mean", **kw)
        r = (
            cm.ratio(tpr, o["true_positive_rate"], method),
            cm.ratio(fpr, o["false_positive_rate"], method),
        )
        assert min(r) == equalized_odds_ratio(y, pred, agg="worst_case", **kw)
        assert cm.difference(sel, o["selection_rate"], method) == demographic_parity_difference(
            y, pred, **kw
        )
        assert cm.ratio(sel, o["selection_rate"], method) == demographic_parity_ratio(y, pred, **kw)


def test_intersections_match_fairlearn_multiple_features(case3) -> None:
    y, _, pred, g = case3
    rng = np.random.default_rng(1)
    sens = pd.DataFrame({"sex": rng.choice(["F", "M"], len(y)), "site": g})
    mf = MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=pred, sensitive_features=sens)
    enc = encode_groups(sens, ["sex", "site"])
    assert enc.attribute == "sex&site"
    assert enc.names == [f"{a}&{b}" for a, b in mf.by_group.index]
    counts = group_confusion_counts(y, pred, enc.codes, enc.n_groups)
    assert list(cm.rate(counts, "true_positive_rate", 0.0)) == list(mf.by_group.to_numpy())
    assert cm.difference(cm.rate(counts, "true_positive_rate", 0.0)) == mf.difference()


def test_group_without_positives_follows_fairlearn_zero_convention() -> None:
    y, _, pred, g = binary_case(seed=4, n=400)
    y = y.copy()
    y[g == "C"] = 0  # group C has no positives: TPR is 0/0
    mf = MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=pred, sensitive_features=g)
    _, counts, ours = _ours(y, pred, g, "true_positive_rate", zero_division=0.0)
    assert list(ours) == list(mf.by_group.to_numpy())
    assert mf.by_group["C"] == 0.0
    assert cm.difference(ours) == equal_opportunity_difference(y, pred, sensitive_features=g)
    assert np.isnan(cm.rate(counts, "true_positive_rate")[2])  # our default: undefined, not 0


def test_plugin_values_equal_fairlearn(case3) -> None:
    y, score, _, g = case3
    pred = (score >= 0.5).astype(int)
    sens = pd.DataFrame({"site": g})
    res = GroupMetrics(curves=False).compute(
        context(y, score, sens, attributes=["site"], n_boot=20, n_permutations=20)
    )
    by = {r.metric: r for r in res}
    kw = {"sensitive_features": g}
    assert by["equal_opportunity_difference"].value == equal_opportunity_difference(y, pred, **kw)
    assert by["equal_opportunity_ratio"].value == equal_opportunity_ratio(y, pred, **kw)
    assert by["equal_opportunity_difference_to_overall"].value == equal_opportunity_difference(
        y, pred, method="to_overall", **kw
    )
    assert by["equalized_odds_difference"].value == equalized_odds_difference(y, pred, **kw)
    assert by["equalized_odds_difference_mean"].value == equalized_odds_difference(
        y, pred, agg="mean", **kw
    )
    assert by["equalized_odds_ratio"].value == equalized_odds_ratio(y, pred, **kw)
    assert by["demographic_parity_difference"].value == demographic_parity_difference(y, pred, **kw)
    assert by["demographic_parity_ratio"].value == demographic_parity_ratio(y, pred, **kw)
    assert by["demographic_parity_ratio_to_overall"].value == demographic_parity_ratio(
        y, pred, method="to_overall", **kw
    )
    mf = MetricFrame(metrics=false_positive_rate, y_true=y, y_pred=pred, sensitive_features=g)
    assert [gv.value for gv in by["false_positive_rate"].per_group] == list(mf.by_group.to_numpy())
    assert by["false_positive_rate"].value == mf.overall
    assert by["false_positive_rate_difference"].value == mf.difference()
    assert by["worst_group_false_positive_rate"].value == mf.group_max()
    assert (
        by["worst_group_true_positive_rate"].value
        == MetricFrame(
            metrics=true_positive_rate, y_true=y, y_pred=pred, sensitive_features=g
        ).group_min()
    )


@pytest.fixture(scope="module")
def aif360_metrics():
    logging.getLogger().setLevel(logging.ERROR)  # aif360 logs optional-dependency warnings
    return pytest.importorskip("aif360.sklearn.metrics")


@pytest.mark.parametrize("priv", ["M", "F"])
def test_signed_variants_equal_aif360(aif360_metrics, priv: str) -> None:
    m = aif360_metrics
    y, score, _, _ = binary_case(seed=5, n=600, groups=("F", "M"), tpr=(0.6, 0.85), fpr=(0.3, 0.15))
    rng = np.random.default_rng(5)
    sex = rng.choice(np.array(["F", "M"], dtype=object), len(y))
    pred = (score >= 0.5).astype(int)
    sens = pd.DataFrame({"sex": sex})
    res = GroupMetrics(
        reference_groups={"sex": priv}, curves=False, permutation_tests=False
    ).compute(context(y, score, sens, attributes=["sex"], n_boot=10))
    by = {r.metric: r for r in res}
    kw = {"prot_attr": sex, "priv_group": priv}
    yt = pd.Series(y)
    assert by["equal_opportunity_difference_signed"].value == pytest.approx(
        m.equal_opportunity_difference(yt, pred, **kw), abs=1e-15
    )
    assert by["average_odds_difference_signed"].value == pytest.approx(
        m.average_odds_difference(yt, pred, **kw), abs=1e-15
    )
    assert by["statistical_parity_difference_signed"].value == pytest.approx(
        m.statistical_parity_difference(yt, pred, **kw), abs=1e-15
    )
    assert by["disparate_impact_ratio"].value == pytest.approx(
        m.disparate_impact_ratio(yt, pred, **kw), abs=1e-15
    )
    assert by["equal_opportunity_difference_signed"].details["reference_group"] == priv
    # documented equivalences for a binary attribute (METHODS.md §5.3)
    assert by["equal_opportunity_difference"].value == pytest.approx(
        abs(m.equal_opportunity_difference(yt, pred, **kw)), abs=1e-15
    )
    assert by["demographic_parity_difference"].value == pytest.approx(
        abs(m.statistical_parity_difference(yt, pred, **kw)), abs=1e-15
    )
    assert by["equalized_odds_difference_mean"].value == pytest.approx(
        m.average_odds_error(yt, pred, **kw), abs=1e-15
    )


def test_score_metrics_equal_sklearn(case3) -> None:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y, score, _, g = case3
    score = np.round(score, 2)  # ties
    res = GroupMetrics(
        metrics=["roc_auc", "average_precision", "brier_score"],
        curves=True,
        permutation_tests=False,
    ).compute(context(y, score, pd.DataFrame({"site": g}), attributes=["site"], n_boot=10))
    by = {r.metric: r for r in res}
    for gv in by["roc_auc"].per_group:
        rows = g == gv.group
        assert gv.value == pytest.approx(roc_auc_score(y[rows], score[rows]), abs=1e-12)
    assert by["roc_auc"].value == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    for gv in by["average_precision"].per_group:
        rows = g == gv.group
        assert gv.value == pytest.approx(average_precision_score(y[rows], score[rows]), abs=1e-12)
    assert by["brier_score"].value == pytest.approx(brier_score_loss(y, score), abs=1e-12)
    curve = by["calibration_curve"].details["curves"]["A"]
    rows = g == "A"
    edges = np.percentile(score, np.linspace(0, 100, 11))
    ids = np.searchsorted(edges[1:-1], score[rows])
    frac = [y[rows][ids == b].mean() for b in range(10) if (ids == b).any()]
    assert curve["fraction_positive"] == pytest.approx(frac, abs=1e-12)
    # pooled bins equal sklearn's quantile bins on the pooled scores
    prob_true, prob_pred = calibration_curve(y, score, n_bins=10, strategy="quantile")
    from fairaudit.stats.ranking import bin_edges, calibration_points

    pooled = calibration_points(y, score, bin_edges(score, 10, "quantile"))
    assert pooled["fraction_positive"] == pytest.approx(list(prob_true), abs=1e-12)
    assert pooled["mean_predicted"] == pytest.approx(list(prob_pred), abs=1e-12)
