"""Downstream endpoints on hand-made scores whose values are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from fairaudit_cafgan.endpoints import auc_by_group, auc_gap, endpoints, youden_threshold


def _saturated(n: int = 400, seed: int = 0):
    """Every score >= 0.5 (TPR 1 in both groups at 0.5), but group F is ranked at random and
    group M perfectly: the fixed-threshold EOD is 0 while the groups are far apart."""
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    groups = np.repeat(["F", "M"], n // 2)
    scores = np.where(groups == "M", 0.6 + 0.3 * y, 0.6 + 0.3 * rng.random(n))
    return y, scores, groups


def test_youden_threshold_separates_perfectly_separated_scores():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    t = youden_threshold(y, s)
    assert 0.3 < t <= 0.7
    with pytest.raises(ValueError, match="both classes"):
        youden_threshold(np.zeros(4), s[:4])


def test_auc_gap_is_max_minus_min_group_auc():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    groups = np.array(["a"] * 4 + ["b"] * 4)
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.9, 0.1, 0.8, 0.2])  # a: AUC 1, b: AUC 0
    assert auc_by_group(y, s, groups) == {"a": 1.0, "b": 0.0}
    assert auc_gap(y, s, groups) == 1.0
    assert np.isnan(auc_gap(y, s, np.array(["a"] * 8)))


def test_saturated_classifier_has_zero_fixed_eod_but_a_calibrated_gap():
    y, s, g = _saturated()
    yv, sv, _ = _saturated(seed=1)
    out = endpoints(y, s, g, yv, sv)
    assert out["tpr_fixed"] == {"F": 1.0, "M": 1.0} and out["eod_fixed"] == 0.0
    assert out["auc_by_group"]["M"] == 1.0 and abs(out["auc_by_group"]["F"] - 0.5) < 0.1
    assert out["auc_gap"] > 0.4
    assert 0.75 < out["threshold"] <= 0.9  # Youden on validation: M's positives sit at 0.9
    assert out["tpr_calibrated"]["M"] == 1.0 and out["eod_calibrated"] > 0.4


def test_endpoints_reject_mismatched_lengths():
    y, s, g = _saturated()
    with pytest.raises(ValueError, match="400 labels, 399 scores"):
        endpoints(y, s[:-1], g, y, s)
