"""Validation grids during fine-tuning, the img2img editor, and the plumbing-check mark."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fairaudit_diffusion.generator import DiffusionCounterfactuals
from fairaudit_diffusion.tiny import TINY_MARKER

from fairaudit.base import RunContext
from fairaudit.blocks import to_block

PROMPTS = ["chest x-ray, with support devices", "chest x-ray, female patient"]


def test_validation_grid_is_saved_and_reported(tiny_dir: Path, dataset, tmp_path: Path, fast: dict) -> None:
    from PIL import Image

    params = {
        **fast, "model_dir": str(tiny_dir), "finetune": "lora", "lr": 1e-2, "max_steps": 4,
        "validation_every": 2, "validation_prompts": PROMPTS, "num_inference_steps": 4,
        "checkpoint_every": 4,
    }
    g = DiffusionCounterfactuals(**params).bind(RunContext(work_dir=tmp_path)).fit(dataset)
    samples = g.train_log_.validation
    assert sorted(samples) == [0, 2, 4]
    assert all(tuple(v.shape) == (2, 1, 32, 32) and str(v.dtype) == "torch.uint8" for v in samples.values())
    assert not samples[0].equal(samples[4])  # training changed what the prompts give
    png = tmp_path / "figures" / "sd_counterfactual_validation.png"
    # 2 prompt columns x 3 step rows of 96 px cells (+4 px padding, 90 px labels, 18 px header)
    assert Image.open(png).size == (90 + 2 * 100 + 4, 18 + 3 * 100 + 4)
    block = g.report_blocks()[-1]
    assert to_block(block).kind == "image_grid" and block["path"] == "figures/sd_counterfactual_validation.png"
    assert all(p in block["caption"] for p in PROMPTS)
    # a resumed fit keeps the rows drawn before (they travel in the training state)
    again = DiffusionCounterfactuals(**params).bind(RunContext(work_dir=tmp_path)).fit(dataset)
    assert again.train_log_.resumed_from == 4
    assert all(again.train_log_.validation[s].equal(samples[s]) for s in samples)
    with pytest.warns(UserWarning, match="needs a run folder"):  # checkpoint_every, but nowhere to write
        unbound = DiffusionCounterfactuals(**{**params, "max_steps": 1, "validation_every": 1}).fit(dataset)
    assert unbound.validation_grid_["data_uri"].startswith("data:image/png;base64,")


@pytest.fixture(scope="module")
def img2img(tiny_dir: Path, dataset, fast: dict) -> DiffusionCounterfactuals:
    return DiffusionCounterfactuals(
        **{**fast, "max_steps": 3}, model_dir=str(tiny_dir), finetune="lora", lr=1e-2,
        editor="img2img", strength=0.5,
    ).fit(dataset)


def test_img2img_editor_reuses_the_fine_tuned_components(img2img: DiffusionCounterfactuals, dataset) -> None:
    from diffusers import StableDiffusionImg2ImgPipeline

    images = dataset.images[:4]
    out = img2img.counterfactual(images, {"factor": "device", "to": 0})
    pipe = img2img.img2img_pipe_
    assert isinstance(pipe, StableDiffusionImg2ImgPipeline)
    c = img2img.components_
    assert pipe.unet is c.unet and pipe.vae is c.vae and pipe.text_encoder is c.text_encoder
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert np.abs(out - images).mean() > 1e-3
    assert np.array_equal(out, img2img.counterfactual(images, {"factor": "device", "to": 0}))  # seeded
    img2img.report_blocks()
    assert "StableDiffusionImg2ImgPipeline" in img2img.report_details_["caption"]


def test_img2img_latents_are_the_pipelines_own(img2img: DiffusionCounterfactuals, dataset) -> None:
    """The editor's embeddings route equals the pipeline called with the caption strings."""
    import torch
    from fairaudit_diffusion.images import to_model_space
    from fairaudit_diffusion.img2img import img2img_latents, load_img2img_pipeline

    c = img2img.components_
    pipe = load_img2img_pipeline(c)
    pixels = (to_model_space(dataset.images[:2], 32) + 1) / 2
    targets = ["chest x-ray, without support devices"] * 2
    ours = img2img_latents(
        pipe, pixels, c.encode_text(targets), c.encode_text(["", ""]),
        strength=0.5, num_inference_steps=10, guidance_scale=3.0, generator=torch.Generator().manual_seed(5),
    )
    theirs = pipe(
        prompt=targets, negative_prompt=["", ""], image=pixels, strength=0.5, num_inference_steps=10,
        guidance_scale=3.0, generator=torch.Generator().manual_seed(5), output_type="latent",
    ).images
    assert ours.shape == (2, 4, 8, 8) and torch.allclose(ours, theirs, atol=1e-5)


def test_img2img_zero_strength_returns_the_input_and_blend_is_refused(
    img2img: DiffusionCounterfactuals, dataset, fast: dict
) -> None:
    images = dataset.images[:2]
    img2img.set_params(strength=0.0)
    try:
        out = img2img.counterfactual(images, {"factor": "device", "to": 0})
    finally:
        img2img.set_params(strength=0.5)
    assert np.allclose(out, images, atol=1e-6)
    with pytest.raises(ValueError, match="blend"):
        DiffusionCounterfactuals(model_dir="tiny://32", editor="img2img", blend=0.3, **fast).fit(dataset)


def test_only_tiny_pipelines_are_marked_as_a_plumbing_check(
    tiny_dir: Path, dataset, tmp_path: Path, fast: dict
) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(tiny_dir, plain)
    (plain / TINY_MARKER).unlink()
    params = {**fast, "finetune": "none", "num_inference_steps": 2, "n_report_examples": 2}
    real = DiffusionCounterfactuals(model_dir=str(plain), **params).fit(dataset)
    assert real.plumbing_check_ is False
    assert [b["kind"] for b in real.report_blocks()] == ["image_grid", "table", "table"]
    tiny = DiffusionCounterfactuals(model_dir=str(tiny_dir), **params).fit(dataset)
    first = tiny.report_blocks()[0]
    assert first["kind"] == "text" and first["title"] == "Plumbing check, not a result"
    assert "random weights" in first["text"]
