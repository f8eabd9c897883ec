"""Losses of CAF-GAN: values against ground truth, and gradients that reach the generator."""

from __future__ import annotations

import numpy as np
import pytest
from cafgan_phantoms import CORRUPTIONS, implausible_masks, phantom_cxr

torch = pytest.importorskip("torch")

from fairaudit_cafgan.losses import (  # noqa: E402
    clinical_loss,
    gradient_penalty,
    interpolate,
    reference_stats,
    soft_mask_statistics,
    soft_tpr_gap,
)
from fairaudit_cafgan.networks import (  # noqa: E402
    ConditionalGenerator,
    DiagnosticCNN,
    LungUNet,
    ProjectionCritic,
    freeze,
)
from fairaudit_cafgan.trainer import (  # noqa: E402
    FrozenCritics,
    GANSettings,
    fairness_batch,
    generator_losses,
)


# ---------------------------------------------------------------- soft TPR gap
def test_soft_tpr_gap_equals_hard_gap_for_binary_predictions():
    from fairlearn.metrics import equal_opportunity_difference

    rng = np.random.default_rng(0)
    for trial in range(5):
        n, k = 300, 3
        y = rng.integers(0, 2, n)
        groups = rng.integers(0, k, n)
        pred = (rng.random(n) < np.where(groups == 0, 0.8, 0.5)).astype(float)
        onehot = np.eye(k)[groups]
        soft = soft_tpr_gap(torch.tensor(pred), torch.tensor(y), torch.tensor(onehot))
        expected = equal_opportunity_difference(y, pred, sensitive_features=groups)
        assert float(soft) == pytest.approx(expected, abs=1e-6), trial


def test_soft_tpr_gap_ignores_groups_without_positives_and_is_zero_with_one_group():
    probs = torch.tensor([1.0, 0.0, 0.3, 0.9])
    y = torch.tensor([1, 1, 0, 0])
    onehot = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1]])
    gap = soft_tpr_gap(probs.requires_grad_(True), y, onehot)
    assert float(gap.detach()) == 0.0
    gap.backward()  # still attached to the graph
    assert probs.grad is not None


def test_soft_tpr_gap_gradient_raises_worst_group_and_lowers_best():
    probs = torch.tensor([0.9, 0.8, 0.2, 0.4, 0.7], requires_grad=True)
    y = torch.tensor([1, 1, 1, 1, 0])
    onehot = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1], [0, 1]])
    soft_tpr_gap(probs, y, onehot).backward()
    grad = probs.grad.numpy()
    assert np.all(grad[:2] > 0)  # best group (TPR 0.85): descending the gap lowers it
    assert np.all(grad[2:4] < 0)  # worst group (TPR 0.3): descending the gap raises it
    assert grad[4] == 0  # negatives do not enter a TPR


# ---------------------------------------------------------------- clinical loss
@pytest.fixture(scope="module")
def masks():
    return phantom_cxr(n=90, size=32, seed=3).masks


def test_clinical_loss_is_lower_for_plausible_masks(masks):
    ref = reference_stats(torch.tensor(masks))
    real = clinical_loss(torch.tensor(masks), ref, reduction="none")
    bad = clinical_loss(torch.tensor(implausible_masks(masks)), ref, reduction="none")
    assert float(real.mean()) < 0.05
    for kind, label in enumerate(CORRUPTIONS):  # each kind of corruption is penalised
        worst_real = float(real.max())
        assert float(bad[kind :: len(CORRUPTIONS)].min()) > worst_real, label
    assert float(clinical_loss(torch.tensor(masks), ref)) < float(
        clinical_loss(torch.tensor(implausible_masks(masks)), ref)
    )


def test_clinical_loss_penalises_half_on_probabilities(masks):
    ref = reference_stats(torch.tensor(masks))
    real = torch.tensor(masks)
    # lungs in the right place, but every pixel half-on
    hedged = 0.5 * torch.ones_like(real) * (real.mean(dim=0, keepdim=True) > 0)
    stats = soft_mask_statistics(hedged)
    assert float(stats["ambiguity"].mean()) > ref["ambiguity_mean"] + 5 * ref["ambiguity_std"]
    assert float(clinical_loss(hedged, ref)) > float(clinical_loss(real, ref)) + 1.0


def test_soft_mask_statistics_match_hand_computed_values():
    m = torch.zeros(1, 8, 8)
    m[0, 2:6, 1:3] = 1.0  # left lung: 8 px
    m[0, 2:6, 5:8] = 1.0  # right lung: 12 px
    stats = soft_mask_statistics(m)
    assert float(stats["area"]) == pytest.approx(20 / 64)
    assert float(stats["balance"]) == pytest.approx((8 - 12) / 20, abs=1e-5)
    # perimeter: left 2 * (4 + 2) = 12; right 3 + 3 (top, bottom) + 4 (left; its right edge is
    # the image border) = 10; divided by sqrt(mass + 1)
    assert float(stats["contiguity"]) == pytest.approx(22 / np.sqrt(21), rel=1e-5)
    assert float(stats["ambiguity"]) == pytest.approx(0.0)


def test_clinical_loss_gradient_is_finite_and_nonzero(masks):
    ref = reference_stats(torch.tensor(masks))
    soft = torch.tensor(implausible_masks(masks)[:6]).clamp(0.05, 0.95).requires_grad_(True)
    clinical_loss(soft, ref).backward()
    assert torch.isfinite(soft.grad).all()
    assert float(soft.grad.abs().sum()) > 0


# ---------------------------------------------------------------- gradient penalty
def test_gradient_penalty_of_a_linear_critic_is_exact():
    w = torch.randn(1, 1, 4, 4)

    def critic(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return (x * w).flatten(1).sum(1)

    real, fake = torch.rand(5, 1, 4, 4), torch.rand(5, 1, 4, 4)
    mixed = interpolate(real, fake)
    gp = gradient_penalty(critic(mixed, None), mixed)
    assert float(gp) == pytest.approx(float((w.norm() - 1) ** 2), rel=1e-5)


# ---------------------------------------------------------------- gradients reach G
def _tiny_gan(torch_mod):
    torch_mod.manual_seed(0)
    G = ConditionalGenerator(8, 4, 32, 4)
    D = ProjectionCritic(4, 32, 4)
    clf = freeze(DiagnosticCNN(32, 4))
    seg = freeze(LungUNet(4, depth=2))
    ref = reference_stats(torch_mod.tensor(phantom_cxr(n=32, size=32, seed=1).masks))
    settings = GANSettings(
        z_dim=8,
        n_groups=2,
        lambda_fair=1.0,
        lambda_clinic=1.0,
        fair_per_group=4,
        fair_groups=[0, 1],
        clinical_tolerance=0.0,
    )
    return G, D, FrozenCritics(clf, seg, ref), settings


def test_fairness_and_clinical_terms_send_gradients_to_the_generator(torch_single_thread):
    """The published code computed both terms under no_grad: the generator got nothing."""
    G, D, critics, settings = _tiny_gan(torch)
    z = torch.randn(8, settings.z_dim)
    c = torch.tensor([0, 1, 2, 3] * 2)
    fair = fairness_batch(settings, "cpu")
    # make the frozen classifier's groups differ, so that the TPR gap is not exactly zero
    fair = (fair[0] + torch.linspace(-2, 2, len(fair[0]))[:, None], fair[1], fair[2])
    out = generator_losses(G, D, z, c, critics, settings, fair=fair)
    params = [p for p in G.parameters()]
    for term in ("fairness", "clinical"):
        assert out[term].requires_grad, f"{term} term is detached from the generator"
        grads = torch.autograd.grad(out[term], params, retain_graph=True, allow_unused=True)
        norm = sum(float(g.abs().sum()) for g in grads if g is not None)
        assert np.isfinite(norm) and norm > 0, f"no gradient from the {term} term reaches G"
    # the frozen critics pass gradients through but never accumulate any themselves
    out["total"].backward()
    for module in (critics.classifier, critics.segmenter):
        assert all(p.grad is None for p in module.parameters())
    # the check above would catch the published bug
    with torch.no_grad():
        detached = generator_losses(G, D, z, c, critics, settings, fair=fair)
    assert not detached["fairness"].requires_grad and not detached["clinical"].requires_grad


def test_lambda_terms_change_the_generator_update(torch_single_thread, tiny_cxr):
    """With equal seeds, lambda > 0 and lambda = 0 give different generators after a few
    steps (the terms enter the optimiser step), and lambda = 0 reproduces itself."""
    from fairaudit_cafgan import CAFGAN

    params = dict(
        image_size=32,
        z_dim=8,
        base_channels=4,
        n_steps=2,
        batch_size=16,
        n_critic=1,
        classifier_epochs=1,
        segmenter_epochs=2,
        critic_channels=4,
        segmenter_channels=4,
        fair_per_group=4,
        lambda_warmup=0.0,
        clinical_tolerance=0.0,
        device="cpu",
        progress=False,
    )
    plain = CAFGAN(**params, lambda_fair=0.0, lambda_clinic=0.0).fit(tiny_cxr)
    again = CAFGAN(**params, lambda_fair=0.0, lambda_clinic=0.0).fit(tiny_cxr)
    fair = CAFGAN(**params, lambda_fair=5.0, lambda_clinic=0.0).fit(tiny_cxr)
    clin = CAFGAN(**params, lambda_fair=0.0, lambda_clinic=5.0).fit(tiny_cxr)

    def weights(model):
        return torch.cat([p.detach().flatten() for p in model.generator_.parameters()])

    assert torch.equal(weights(plain), weights(again))
    assert not torch.allclose(weights(plain), weights(fair))
    assert not torch.allclose(weights(plain), weights(clin))
    assert "generator_fairness" in fair.history_[-1] and "generator_clinical" in clin.history_[-1]


# ---------------------------------------------------------------- hard plausibility
def test_lung_plausibility_flags_every_corruption_and_no_real_mask(masks):
    from fairaudit_cafgan import lung_plausibility, plausibility_reference

    ref = plausibility_reference(masks)
    real = lung_plausibility(masks, ref)
    assert real["rate"] == 0.0 and set(real["n_components"]) == {2}
    bad = lung_plausibility(implausible_masks(masks), ref)
    assert bad["rate"] == 1.0
    merged = bad["n_components"][3 :: len(CORRUPTIONS)]
    assert set(merged) == {1}
    one_lung = bad["n_components"][0 :: len(CORRUPTIONS)]
    assert set(one_lung) == {1}


def test_mask_measurements_on_hand_made_masks():
    from fairaudit_cafgan.plausibility import mask_measurements

    m = np.zeros((3, 16, 16), np.float32)
    m[0, 4:12, 2:6] = 1  # left field only
    m[1, 4:12, 2:6] = 1
    m[1, 4:12, 10:14] = 1  # two equal fields
    m[2, 4:12, 2:6] = 1
    m[2, 4:8, 10:14] = 1  # right field half as large, plus a 1-pixel speck (ignored)
    m[2, 0, 8] = 1
    meas = mask_measurements(m)
    np.testing.assert_array_equal(meas["n_components"], [1, 2, 2])
    np.testing.assert_allclose(meas["area_fraction"], [32 / 256, 64 / 256, 49 / 256])
    np.testing.assert_allclose(meas["balance"], [0.0, 1.0, 17 / 32])
