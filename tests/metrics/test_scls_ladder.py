"""SCLS tracks true shortcut reliance: on a graded-shortcut ladder (pixel classifiers trained on
``synthetic_cxr`` at increasing device-label tie, true reliance = decision flip rate under the
oracle device flip) its Spearman rank correlation with the truth is >= 0.9, on the oracle's
counterfactuals, on degraded, generator-like ones (failed, faded and noisy edits) and on an
independent device editor's (inpainting / pasting another image's device).

The default test uses 5 rungs at 32 px (about 2 s); the 11-rung ladder is ``slow`` and in
``benchmarks/bench_scls.py``."""

from __future__ import annotations

import numpy as np
import pytest

from fairaudit.builtin.metrics.counterfactual_sensitivity import CounterfactualSensitivity
from fairaudit.builtin.metrics.scls import SCLS
from fairaudit.testing.shortcut_ladder import (
    ShortcutLadder,
    build_ladder,
    imperfect_counterfactuals,
    paint_device,
    spearman,
)

#: Generator-like degradations of the oracle's device edit.
DEGRADED = {
    "noisy": {"noise_sd": 0.05},
    "partial": {"fail_rate": 0.4, "fade": (0.3, 1.0)},
    "noisy+partial": {"fail_rate": 0.3, "fade": (0.5, 1.0), "noise_sd": 0.05},
}


def _scls(ladder: ShortcutLadder, sets: dict[str, np.ndarray]) -> np.ndarray:
    values = [SCLS(min_edits=1).compute(ladder.context(rung, sets))[0].value for rung in ladder.rungs]
    return np.asarray(values, dtype=np.float64)


def _check(ladder: ShortcutLadder) -> dict[str, float]:
    truth = ladder.true_reliance
    assert np.ptp(truth) > 0.5  # the ladder spans weak to strong reliance
    rho = {"oracle": spearman(_scls(ladder, {"oracle:device": ladder.oracle["device"]}), truth)}
    for i, (name, how) in enumerate(DEGRADED.items()):
        generated = imperfect_counterfactuals(ladder.images, ladder.oracle["device"], seed=i, **how)
        # a generator arm: its own set is judged, the oracle's is only the reference
        rho[name] = spearman(_scls(ladder, {"oracle:device": ladder.oracle["device"], "device": generated}), truth)
    painted = paint_device(ladder.images, ladder.images)
    rho["painter"] = spearman(_scls(ladder, {"oracle:device": ladder.oracle["device"], "device": painted}), truth)
    print("SCLS vs true reliance, Spearman:", {k: round(v, 3) for k, v in rho.items()},
          "| truth:", np.round(truth, 3).tolist())
    for name, r in rho.items():
        assert r >= 0.9, f"{name}: Spearman {r:.3f} < 0.9"
    return rho


@pytest.fixture(scope="module")
def small_ladder() -> ShortcutLadder:
    return build_ladder(strengths=(0.0, 0.25, 0.5, 0.75, 1.0), n_train=400, n_test=300, seed=0)


def test_scls_ranks_a_small_ladder_like_true_reliance(small_ladder) -> None:
    _check(small_ladder)


def test_scls_on_oracle_edits_is_the_counterfactual_sensitivity(small_ladder) -> None:
    """Every oracle device edit is confirmed, so SCLS is exactly cf_sensitivity_device."""
    for rung in small_ladder.rungs:
        ctx = small_ladder.context(rung, {"oracle:device": small_ladder.oracle["device"]})
        scls = SCLS(min_edits=1).compute(ctx)[0]
        sens = CounterfactualSensitivity(factors=["device"]).compute(ctx)[0]
        assert scls.details["n_confirmed"] == len(small_ladder.images)
        assert scls.value == pytest.approx(sens.value) == pytest.approx(rung.true_reliance)


@pytest.mark.slow
def test_scls_ranks_the_full_ladder_on_two_seeds() -> None:
    for seed in (0, 1):
        ladder = build_ladder(strengths=tuple(np.linspace(0.0, 1.0, 11)), seed=seed)
        _check(ladder)
