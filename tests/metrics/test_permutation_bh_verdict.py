"""Permutation tests (calibrated under the null, powerful under a gap), BH and verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from _metrics_data import binary_case
from scipy.stats import false_discovery_control, kstest

from fairaudit.stats import (
    benjamini_hochberg,
    encode_groups,
    group_confusion_counts,
    judge_threshold,
    permutation_test_counts,
    permutation_test_gap,
    permutation_test_score_gap,
)
from fairaudit.stats.permutation import count_gap_statistic
from fairaudit.stats.resample import permuted_counts


def _null_case(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """No group effect: the same TPR/FPR in every group, unequal prevalence and sizes."""
    rng = np.random.default_rng(seed)
    g = rng.choice(np.array(["A", "B", "C"], dtype=object), n, p=[0.5, 0.3, 0.2])
    prev = np.where(g == "A", 0.3, 0.5)
    y = (rng.random(n) < prev).astype(int)
    pred = (rng.random(n) < np.where(y == 1, 0.7, 0.2)).astype(int)
    score = np.where(y == 1, rng.normal(1, 1, n), rng.normal(0, 1, n))
    return y, pred, score, g


@pytest.mark.parametrize(
    "metric",
    ["true_positive_rate", "selection_rate", "positive_predictive_value", "equalized_odds"],
)
def test_permutation_p_values_uniform_under_null(metric: str) -> None:
    if metric == "selection_rate":  # demographic parity's null also needs equal prevalence
        cases = [binary_case(seed=s, n=300, tpr=(0.7,) * 3, fpr=(0.2,) * 3) for s in range(400)]
        data = [(y, pred, g) for y, _, pred, g in cases]
    elif (
        metric == "positive_predictive_value"
    ):  # null: y independent of the group given the prediction
        data = []
        for s in range(400):
            rng = np.random.default_rng(s)
            g = rng.choice(np.array(["A", "B", "C"], dtype=object), 300, p=[0.5, 0.3, 0.2])
            pred = (rng.random(300) < np.where(g == "A", 0.3, 0.5)).astype(int)
            y = (rng.random(300) < np.where(pred == 1, 0.7, 0.2)).astype(int)
            data.append((y, pred, g))
    else:
        data = [(y, pred, g) for y, pred, _, g in (_null_case(s) for s in range(400))]
    p = np.array(
        [
            permutation_test_gap(y, pred, g, metric=metric, n_permutations=199, seed=s).p_value
            for s, (y, pred, g) in enumerate(data)
        ]
    )
    assert 0.02 <= np.mean(p <= 0.05) <= 0.09
    assert kstest(p, "uniform").pvalue > 0.001


def test_permutation_detects_a_real_gap() -> None:
    y, _, pred, g = binary_case(seed=1, n=900, tpr=(0.85, 0.7, 0.55))
    res = permutation_test_gap(y, pred, g, metric="true_positive_rate", n_permutations=999, seed=0)
    assert res.p_value <= 0.002
    assert res.statistic == pytest.approx(res.statistic)
    assert res.null.shape == (999,)


def test_exact_count_permutation_matches_row_shuffling() -> None:
    """Hypergeometric draws give the law of shuffling group labels within label strata."""
    y, pred, _, g = _null_case(3, n=200)
    enc = encode_groups(g)
    counts = group_confusion_counts(y, pred, enc.codes, enc.n_groups)
    stat = count_gap_statistic("true_positive_rate")
    fast = stat(permuted_counts(counts, "label", 4000, np.random.default_rng(0)))
    rng = np.random.default_rng(1)
    slow = []
    for _ in range(4000):
        codes = enc.codes.copy()
        for label in (0, 1):
            idx = np.flatnonzero(y == label)
            codes[idx] = rng.permutation(codes[idx])
        slow.append(stat(group_confusion_counts(y, pred, codes, enc.n_groups)))
    assert kstest(fast, np.array(slow)).pvalue > 0.001
    perm = permuted_counts(counts, "none", 500, np.random.default_rng(2))
    assert np.array_equal(perm.sum(1), np.broadcast_to(counts.sum(0), (500, 4)))
    assert np.array_equal(perm.sum(2), np.broadcast_to(counts.sum(1), (500, enc.n_groups)))


def test_patient_cluster_permutation_is_calibrated() -> None:
    p = []
    for s in range(150):
        y, pred, _, g = _null_case(1000 + s, n=150)
        # two identical rows per patient: whole patients move between groups
        res = permutation_test_gap(
            np.repeat(y, 2),
            np.repeat(pred, 2),
            np.repeat(g, 2),
            patient_ids=np.repeat(np.arange(150), 2),
            metric="true_positive_rate",
            n_permutations=99,
            seed=s,
        )
        p.append(res.p_value)
    p = np.array(p)
    assert 0.01 <= np.mean(p <= 0.05) <= 0.11


def test_auc_gap_permutation() -> None:
    null_p = [
        permutation_test_score_gap(y, s, g, metric="roc_auc", n_permutations=99, seed=i).p_value
        for i, (y, _, s, g) in enumerate(_null_case(2000 + k, n=200) for k in range(100))
    ]
    assert 0.0 <= np.mean(np.array(null_p) <= 0.05) <= 0.12
    rng = np.random.default_rng(0)
    n = 600
    g = rng.choice(np.array(["A", "B"], dtype=object), n)
    y = rng.integers(0, 2, n)
    s = np.where(y == 1, rng.normal(np.where(g == "A", 2.0, 0.5), 1), rng.normal(0, 1, n))
    assert permutation_test_score_gap(y, s, g, metric="roc_auc", n_permutations=199).p_value <= 0.01


def test_counts_api_and_p_value_floor() -> None:
    counts = np.array([[50, 0, 0, 50], [0, 50, 50, 0]])  # perfect vs inverted classifier
    res = permutation_test_counts(counts, "accuracy", n_permutations=99, seed=0)
    assert res.statistic == 1.0
    assert res.p_value == pytest.approx(1 / 100)


# ---------------------------------------------------------------- Benjamini–Hochberg
def test_bh_matches_hand_computation_and_scipy() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.20])
    # sorted: 0.005, 0.01, 0.03, 0.04, 0.20 -> m*p/i = 0.025, 0.025, 0.05, 0.05, 0.20
    expected = np.array([0.025, 0.05, 0.05, 0.025, 0.20])
    assert np.allclose(benjamini_hochberg(p), expected)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.random(rng.integers(1, 60)) ** 2
        assert np.allclose(benjamini_hochberg(q), false_discovery_control(q, method="bh"))


def test_bh_keeps_nan_and_validates() -> None:
    out = benjamini_hochberg([0.01, np.nan, 0.02])
    assert np.isnan(out[1])
    assert np.allclose(out[[0, 2]], [0.02, 0.02])
    with pytest.raises(ValueError):
        benjamini_hochberg([1.2])
    assert benjamini_hochberg([]).shape == (0,)


# ---------------------------------------------------------------- verdicts
@pytest.mark.parametrize(
    ("value", "low", "high", "bounds", "expected"),
    [
        (0.02, 0.01, 0.04, {"max": 0.05}, "pass"),
        (0.04, 0.02, 0.07, {"max": 0.05}, "inconclusive"),
        (0.09, 0.06, 0.12, {"max": 0.05}, "fail"),
        (0.85, 0.81, 0.90, {"min": 0.8}, "pass"),
        (0.78, 0.70, 0.79, {"min": 0.8}, "fail"),
        (0.5, 0.4, 0.6, {"min": 0.45, "max": 0.7}, "inconclusive"),
        (0.5, 0.46, 0.6, {"min": 0.45, "max": 0.7}, "pass"),
        (0.03, None, None, {"max": 0.05}, "pass"),  # no CI: the point value decides
        (None, None, None, {"max": 0.05}, "inconclusive"),
        (float("nan"), 0.0, 0.1, {"max": 0.05}, "inconclusive"),
    ],
)
def test_judge_threshold(value, low, high, bounds, expected) -> None:
    assert judge_threshold(value, low, high, **bounds) == expected


def test_judge_threshold_too_small_and_bounds() -> None:
    assert judge_threshold(0.01, 0.0, 0.02, max=0.05, too_small=True) == "too_small"
    with pytest.raises(ValueError):
        judge_threshold(0.1, 0.0, 0.2)


@pytest.mark.parametrize(
    ("p_value", "expected"),
    [(None, "fail"), (0.01, "fail"), (0.05, "inconclusive"), (0.6, "inconclusive")],
)
def test_judge_threshold_fail_needs_the_test(p_value, expected) -> None:
    """A failing interval is a FAIL only when the (adjusted) test also rejects equal groups."""
    assert judge_threshold(0.33, 0.27, 0.72, max=0.1, p_value=p_value, alpha=0.05) == expected
    # the test never turns a PASS or an INCONCLUSIVE into a FAIL
    assert judge_threshold(0.02, 0.01, 0.04, max=0.05, p_value=0.0001) == "pass"
    assert judge_threshold(0.04, 0.02, 0.07, max=0.05, p_value=0.0001) == "inconclusive"
