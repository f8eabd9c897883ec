"""DDIM inversion and prompt editing: identity is kept, edits change more than round trips."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairaudit_diffusion.editing import (
    classify_by_denoising,
    ddim_denoise,
    ddim_invert,
    ddim_plan,
    edit_mask,
)
from fairaudit_diffusion.generator import DiffusionCounterfactuals
from fairaudit_diffusion.pipeline import load_components

from fairaudit.errors import DataError

SAME = {
    "source_prompt": "chest x-ray, with support devices",
    "target_prompt": "chest x-ray, with support devices",
}
EDIT = {
    "source_prompt": "chest x-ray, with support devices",
    "target_prompt": "chest x-ray, without support devices",
}


def variant(g: DiffusionCounterfactuals, **params: object) -> DiffusionCounterfactuals:
    """A shallow copy with other editing parameters (shares the fitted pipeline)."""
    other = copy.copy(g)
    for key, value in params.items():
        setattr(other, key, value)
    return other


class OracleUNet:
    """Predicts the exact noise that separates ``x_t`` from a known clean latent per caption."""

    def __init__(self, prototypes: dict[int, object], alphas: object):
        self.prototypes, self.alphas = prototypes, alphas

    def __call__(self, x, t, encoder_hidden_states):
        import torch

        a = float(self.alphas[int(t)])
        clean = torch.stack([self.prototypes[int(e[0, 0])] for e in encoder_hidden_states])
        return type("Out", (), {"sample": (x - a**0.5 * clean) / (1 - a) ** 0.5})()


def test_ddim_plan_uses_the_last_fraction_of_the_schedule(tiny_dir: Path) -> None:
    c = load_components(tiny_dir)
    full = ddim_plan(c.scheduler, 20, 1.0)
    part = ddim_plan(c.scheduler, 20, 0.4)
    assert len(full) == 20 and len(part) == 8 and part.timesteps == full.timesteps[-8:]
    assert list(full.timesteps) == sorted(full.timesteps, reverse=True)
    assert len(ddim_plan(c.scheduler, 20, 0.0)) == 0
    with pytest.raises(ValueError, match="strength"):
        ddim_plan(c.scheduler, 20, 1.5)


class ConstantNoiseUNet:
    """One fixed noise field per caption: DDIM then moves along exactly invertible paths."""

    def __init__(self, noises: object):
        self.noises = noises

    def __call__(self, x, t, encoder_hidden_states):
        import torch

        eps = torch.stack([self.noises[int(e[0, 0])] for e in encoder_hidden_states])
        return type("Out", (), {"sample": eps})()


def test_inversion_and_denoising_are_exact_inverses_along_a_ddim_path(tiny_dir: Path) -> None:
    import torch

    c = load_components(tiny_dir)
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(3, 4, 8, 8, generator=gen)
    unet = ConstantNoiseUNet(torch.randn(2, 4, 8, 8, generator=gen))
    src, tgt = torch.zeros(3, 2, 2), torch.ones(3, 2, 2)
    plan = ddim_plan(c.scheduler, 10, 0.7)
    trajectory = ddim_invert(unet, plan, z0, src)
    assert len(trajectory) == 8
    a_top = plan.alphas[0]
    assert float((trajectory[-1] - z0).norm()) > (1 - a_top**0.5) * float(z0.norm())
    assert torch.allclose(ddim_denoise(unet, plan, trajectory[-1], src, None, 1.0), z0, atol=1e-4)
    # Another caption's noise leads elsewhere; a full blend toward the trajectory returns home.
    other = ddim_denoise(unet, plan, trajectory[-1], tgt, None, 1.0)
    assert float((other - z0).norm()) > 0.1 * float(z0.norm())
    home = ddim_denoise(unet, plan, trajectory[-1], tgt, None, 1.0, reference=trajectory, blend=1.0)
    assert torch.allclose(home, z0, atol=1e-5)


def test_latent_round_trip_error_is_small_and_shrinks_with_more_steps(fitted_unet, dataset) -> None:
    c = fitted_unet.components_
    z0 = c.encode(_pixels(fitted_unet, dataset))
    cond = c.encode_text(["chest x-ray, with support devices"] * len(z0))
    errors = {}
    for steps in (5, 50):
        plan = ddim_plan(c.scheduler, steps, 0.6)
        z_t = ddim_invert(c.unet, plan, z0, cond)[-1]
        back = ddim_denoise(c.unet, plan, z_t, cond, None, 1.0)
        errors[steps] = float((back - z0).norm() / z0.norm())
        assert float((z_t - z0).norm() / z0.norm()) > 0.2  # the latent really was noised
    assert errors[50] < 0.02  # measured 0.008 (5 steps: 0.047)
    assert errors[50] < 0.5 * errors[5]


def _pixels(g: DiffusionCounterfactuals, dataset):
    from fairaudit_diffusion.images import to_model_space

    return to_model_space(dataset.images[:8], g.resolution_)


@pytest.mark.parametrize("mode", ["lora", "unet"])
def test_same_prompt_round_trip_keeps_identity_and_an_edit_changes_more(
    mode: str, request: pytest.FixtureRequest, dataset
) -> None:
    g = variant(
        request.getfixturevalue(f"fitted_{mode}"),
        guidance_scale=1.0,
        strength=0.6,
        num_inference_steps=20,
    )
    images = dataset.images[:8]
    same = g.counterfactual(images, SAME)
    assert same.shape == images.shape and same.dtype == np.float32
    identity_error = float(np.abs(same - images).mean())
    assert identity_error < 0.01
    edited = variant(g, guidance_scale=3.0).counterfactual(images, EDIT)
    assert float(np.abs(edited - images).mean()) > 2 * identity_error


def test_without_the_vae_residual_the_round_trip_is_the_vae_reconstruction(
    fitted_unet, dataset
) -> None:
    g = variant(fitted_unet, guidance_scale=1.0, num_inference_steps=20, keep_residual=False)
    images = dataset.images[:4]
    out = g.counterfactual(images, SAME)
    assert 0.0 <= out.min() and out.max() <= 1.0
    recon = variant(g, strength=0.0).counterfactual(images, SAME)
    assert float(np.abs(out - recon).mean()) < float(np.abs(recon - images).mean())


def test_zero_strength_and_full_blend_return_the_input(fitted_unet, dataset) -> None:
    images = dataset.images[:4]
    np.testing.assert_allclose(
        variant(fitted_unet, strength=0.0).counterfactual(images, EDIT), images, atol=1e-6
    )
    np.testing.assert_allclose(
        variant(fitted_unet, blend=1.0).counterfactual(images, EDIT), images, atol=1e-5
    )
    free = float(np.abs(fitted_unet.counterfactual(images, EDIT) - images).mean())
    half = float(
        np.abs(variant(fitted_unet, blend=0.5).counterfactual(images, EDIT) - images).mean()
    )
    assert half < free


def test_auto_mask_is_binary_and_empty_when_prompts_agree(fitted_unet, dataset) -> None:
    import torch

    c = fitted_unet.components_
    z0 = c.encode(_pixels(fitted_unet, dataset)[:4])
    plan = ddim_plan(c.scheduler, 10, 0.6)
    src = c.encode_text([EDIT["source_prompt"]] * 4)
    tgt = c.encode_text([EDIT["target_prompt"]] * 4)
    mask = edit_mask(c.unet, plan, z0, src, tgt, torch.Generator().manual_seed(0))
    assert mask.shape == (4, 1, 8, 8) and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert 0 < float(mask.mean()) < 1
    assert float(edit_mask(c.unet, plan, z0, src, src, torch.Generator()).sum()) == 0.0
    masked = variant(fitted_unet, blend=1.0, blend_mask="auto").counterfactual(
        dataset.images[:4], EDIT
    )
    free = fitted_unet.counterfactual(dataset.images[:4], EDIT)
    assert float(np.abs(masked - dataset.images[:4]).mean()) < float(
        np.abs(free - dataset.images[:4]).mean()
    )


def test_diffusion_classifier_picks_the_caption_that_explains_the_image(tiny_dir: Path) -> None:
    import torch

    c = load_components(tiny_dir)
    protos = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    unet = OracleUNet({0: protos[0], 1: protos[1]}, c.train_scheduler.alphas_cumprod)
    truth = torch.tensor([0, 1, 1, 0, 1])
    latents = protos[truth] + 0.05 * torch.randn(
        5, 4, 8, 8, generator=torch.Generator().manual_seed(2)
    )
    conds = [torch.full((5, 2, 2), float(v)) for v in (0, 1)]
    errors = classify_by_denoising(
        unet, c.train_scheduler, latents, conds, torch.Generator().manual_seed(3), 4
    )
    assert errors.shape == (5, 2)
    assert errors.argmin(axis=1).tolist() == truth.tolist()


def test_factor_edits_build_prompt_pairs(fitted_lora, dataset) -> None:
    images = dataset.images[:6]
    meta = pd.DataFrame(
        {"sex": dataset.sensitive["sex"][:6], "device": dataset.extras["device"][:6]}
    )
    out = fitted_lora.counterfactual(images, {"factor": "device", "to": 0, "metadata": meta})
    assert out.shape == images.shape
    info = fitted_lora.last_edit_
    assert info["source"] == "metadata" and info["to"] == {"0": 6}
    ex = fitted_lora.examples_
    for i, (src, tgt) in enumerate(zip(ex["source"], ex["target"], strict=True)):
        sex = "female patient" if meta["sex"][i] == "F" else "male patient"
        assert sex in src and sex in tgt
        assert ("with support devices" in src) == bool(meta["device"][i])
        assert tgt.endswith("without support devices, " + sex) or "without support devices" in tgt
    # Flip without metadata: the current value is inferred, the caption names only the factor.
    fitted_lora.counterfactual(images, {"factor": "devices"})
    info = fitted_lora.last_edit_
    assert info["source"] == "inferred" and sum(info["from"].values()) == 6
    assert info["to"] == {("1" if k == "0" else "0"): v for k, v in info["from"].items()}
    assert set(fitted_lora.examples_["source"]) <= {
        "chest x-ray, with support devices",
        "chest x-ray, without support devices",
    }
    fitted_lora.counterfactual(images, {"factor": "disease", "from": 1})
    assert set(fitted_lora.examples_["target"]) == {"chest x-ray, without disease"}


def test_bad_edits_are_rejected(fitted_lora, dataset) -> None:
    images = dataset.images[:2]
    with pytest.raises(ValueError, match="'factor'"):
        fitted_lora.counterfactual(images, {"to": 0})
    with pytest.raises(ValueError, match="both"):
        fitted_lora.counterfactual(images, {"source_prompt": "a"})
    with pytest.raises(DataError, match="race"):
        fitted_lora.counterfactual(images, {"factor": "race"})
    with pytest.raises(ValueError, match="'to'"):
        fitted_lora.counterfactual(images, {"factor": "age_group", "from": "<50"})
    with pytest.raises(ValueError, match="3 values for 2 images"):
        fitted_lora.counterfactual(images, {"factor": "device", "from": [0, 1, 1]})
