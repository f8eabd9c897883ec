"""Fine-tuning: the loss falls, only the UNet (or its LoRA adapters) changes, weights persist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fairaudit_diffusion.finetune import load_trained_state
from fairaudit_diffusion.generator import DiffusionCounterfactuals
from fairaudit_diffusion.pipeline import load_components

from fairaudit.base import RunContext
from fairaudit.errors import TrainingError
from fairaudit.training import load_checkpoint


def _states(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


@pytest.fixture(scope="module")
def fresh(tiny_dir: Path):
    c = load_components(tiny_dir, "cpu")
    return {"vae": _states(c.vae), "text_encoder": _states(c.text_encoder), "unet": _states(c.unet)}


@pytest.mark.parametrize("mode", ["lora", "unet"])
def test_finetuning_lowers_the_fixed_denoising_loss(
    mode: str, request: pytest.FixtureRequest
) -> None:
    g = request.getfixturevalue(f"fitted_{mode}")
    log = g.train_log_
    assert len(log.losses) == 30 and log.samples == 30 * 8 and log.samples_per_s > 0
    assert g.eval_loss_after_ < 0.95 * g.eval_loss_before_
    assert np.mean(log.losses[-10:]) < np.mean(log.losses[:10])


def test_lora_trains_adapters_only(fitted_lora: DiffusionCounterfactuals, fresh: dict) -> None:
    c = fitted_lora.components_
    assert _same(_states(c.vae), fresh["vae"]) and _same(
        _states(c.text_encoder), fresh["text_encoder"]
    )
    unet = _states(c.unet)
    lora = {k: v for k, v in unet.items() if "lora_" in k}
    base = {k: v for k, v in unet.items() if "lora_" not in k}
    assert lora and fitted_lora.train_log_.trainable_params == sum(v.numel() for v in lora.values())
    # peft stores wrapped weights as '<module>.base_layer.weight'; map back to the plain names.
    base = {k.replace(".base_layer", ""): v for k, v in base.items()}
    assert _same(base, fresh["unet"])
    assert any(
        float(v.abs().max()) > 0 for k, v in lora.items() if "lora_B" in k
    )  # B starts at zero


def test_full_unet_training_changes_unet_but_not_vae_or_text_encoder(
    fitted_unet: DiffusionCounterfactuals, fresh: dict
) -> None:
    c = fitted_unet.components_
    assert _same(_states(c.vae), fresh["vae"]) and _same(
        _states(c.text_encoder), fresh["text_encoder"]
    )
    unet = _states(c.unet)
    changed = [k for k in unet if not unet[k].equal(fresh["unet"][k])]
    assert len(changed) > 0.9 * len(unet)
    assert fitted_unet.train_log_.trainable_params == sum(v.numel() for v in unet.values())


@pytest.mark.parametrize("mode", ["lora", "unet"])
def test_weights_are_saved_as_safetensors_and_reload(
    mode: str, tiny_dir: Path, dataset, tmp_path: Path, fast: dict
) -> None:
    import torch
    from safetensors import safe_open

    g = DiffusionCounterfactuals(
        model_dir=str(tiny_dir), finetune=mode, lr=1e-2, **{**fast, "max_steps": 3}
    ).bind(RunContext(work_dir=tmp_path))
    g.fit(dataset)
    path = Path(g.checkpoint_)
    assert path == tmp_path / "checkpoints" / f"sd_counterfactual_{mode}.safetensors"
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
        keys = list(fh.keys())
    assert meta["finetune"] == mode and meta["format"] == "fairaudit-diffusion/1"
    assert all("lora_" in k for k in keys) if mode == "lora" else len(keys) > 100
    reloaded = load_components(tiny_dir, "cpu")
    load_trained_state(reloaded.unet, load_checkpoint(path), mode, g.lora_rank)
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    emb = reloaded.encode_text(["chest x-ray", ""])
    with torch.no_grad():
        a = g.components_.unet(x, 500, encoder_hidden_states=emb).sample
        b = reloaded.unet(x, 500, encoder_hidden_states=emb).sample
    assert torch.allclose(a, b, atol=1e-5)


def test_finetune_none_keeps_the_pipeline(tiny_dir: Path, dataset, fresh: dict, fast: dict) -> None:
    g = DiffusionCounterfactuals(model_dir=str(tiny_dir), finetune="none", **fast).fit(dataset)
    assert g.train_log_.losses == [] and g.checkpoint_ is None
    assert _same(_states(g.components_.unet), fresh["unet"])
    assert g.eval_loss_after_ == pytest.approx(g.eval_loss_before_)


def test_diverging_training_is_reported(tiny_dir: Path, dataset, fast: dict) -> None:
    g = DiffusionCounterfactuals(
        model_dir=str(tiny_dir), finetune="unet", lr=1e30, **{**fast, "max_steps": 6}
    )
    with pytest.raises(TrainingError, match="diverged"):
        g.fit(dataset)
