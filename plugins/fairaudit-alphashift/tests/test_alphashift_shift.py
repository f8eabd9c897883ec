"""Bias directions and randomised alpha shifts (numpy level, ground truth by construction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairaudit_alphashift.shift import (
    alpha_shift,
    compute_direction,
    level_labels,
    randomised_shifts,
)

from fairaudit.errors import DataError

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _confounded(n: int = 4000, seed: int = 0) -> Arrays:
    """Z = 2 y e_label + 1 a e_attr + noise, with the attribute a tied to y (80 %)."""
    rng = np.random.default_rng(seed)
    d = 6
    e_label, e_attr = np.eye(d)[0], np.eye(d)[1]
    y = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < 0.8, y, 1 - y)
    Z = 2.0 * y[:, None] * e_label + 1.0 * a[:, None] * e_attr + rng.normal(0, 0.3, (n, d))
    return Z, y, a, e_label, e_attr


def test_marginal_direction_is_the_group_mean_difference() -> None:
    Z, y, a, _, _ = _confounded()
    d = compute_direction(Z, pd.Series(a), y, attribute="a", mode="marginal")
    np.testing.assert_allclose(d.main, Z[a == 1].mean(0) - Z[a == 0].mean(0), rtol=1e-5)
    assert d.reference == "0" and d.levels == ["1"] and d.mode == "marginal"
    assert d.counts == {"0": int((a == 0).sum()), "1": int((a == 1).sum())}


def test_conditional_direction_removes_the_label_confound() -> None:
    Z, y, a, e_label, e_attr = _confounded()
    marginal = compute_direction(Z, pd.Series(a), y, attribute="a", mode="marginal").main
    conditional = compute_direction(Z, pd.Series(a), y, attribute="a", mode="conditional").main
    # marginal picks up 2 * (P(y=1|a=1) - P(y=1|a=0)) = 1.2 along the label axis
    assert marginal @ e_label == pytest.approx(1.2, abs=0.1)
    assert abs(conditional @ e_label) < 0.05
    assert conditional @ e_attr == pytest.approx(1.0, abs=0.05)


def test_conditional_falls_back_when_no_stratum_has_both_groups() -> None:
    Z, y, _, _, _ = _confounded(400)
    d = compute_direction(Z, pd.Series(y), y, attribute="copy_of_label", mode="conditional")
    assert d.mode.startswith("marginal")
    np.testing.assert_allclose(d.main, Z[y == 1].mean(0) - Z[y == 0].mean(0), rtol=1e-5)


def test_levels_strings_numbers_missing_and_many() -> None:
    labels, levels = level_labels(pd.Series(["PA", "AP", None, "AP"]))
    assert levels == ["AP", "PA"] and list(labels) == ["PA", "AP", "", "AP"]
    labels, levels = level_labels(pd.Series([1.0, 0.0, np.nan, 10.0]))
    assert levels == ["0", "1", "10"] and list(labels) == ["1", "0", "", "10"]
    rng = np.random.default_rng(1)
    g = np.array(["A", "B", "C"])[rng.integers(0, 3, 600)]
    Z = rng.normal(size=(600, 3)) + (g == "C")[:, None] * np.array([0.0, 0.0, 3.0])
    d = compute_direction(Z, pd.Series(g), None, attribute="race", mode="marginal")
    assert d.reference == "A" and d.levels == ["B", "C"] and d.vectors.shape == (2, 3)
    assert d.vectors[1][2] == pytest.approx(3.0, abs=0.3) and abs(d.vectors[0][2]) < 0.3


def test_single_group_is_an_error_naming_the_attribute() -> None:
    with pytest.raises(DataError, match="'view'"):
        compute_direction(np.zeros((5, 2)), pd.Series(["PA"] * 5), None, attribute="view")


def test_alpha_shift_moves_along_the_vector() -> None:
    Z = np.zeros((3, 2), np.float32)
    out = alpha_shift(Z, np.array([1.0, 2.0]), np.array([0.0, 1.0, -2.0]))
    np.testing.assert_allclose(out, [[0, 0], [1, 2], [-2, -4]])


def test_randomised_shifts_stay_on_the_direction_and_within_alpha_max() -> None:
    Z, y, a, _, _ = _confounded(300)
    sens = pd.DataFrame({"a": a, "other": np.arange(300)})
    d = compute_direction(Z, sens["a"], y, attribute="a")
    rng = np.random.default_rng(0)
    Zs, ys, ss = randomised_shifts(Z, y, sens, [d], n_augment=3, alpha_max=1.5, rng=rng)
    assert Zs.shape == (1200, Z.shape[1]) and len(ys) == len(ss) == 1200
    np.testing.assert_array_equal(ys, np.tile(y, 4))
    np.testing.assert_array_equal(ss["other"].to_numpy(), np.tile(np.arange(300), 4))
    np.testing.assert_allclose(Zs[:300], Z, rtol=1e-6)
    v = d.main / np.linalg.norm(d.main)
    delta = Zs[300:] - np.tile(Z, (3, 1))
    along = delta @ v
    resid = delta - np.outer(along, v)
    assert np.abs(resid).max() < 1e-4
    alphas = along / np.linalg.norm(d.main)
    assert np.abs(alphas).max() <= 1.5 + 1e-4 and np.abs(alphas).max() > 1.3
    assert abs(alphas.mean()) < 0.1  # symmetric draws
