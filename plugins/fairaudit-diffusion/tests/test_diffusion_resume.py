"""Fine-tuning for real weights: resumable training state, EMA weights, gradient checkpointing,
LR schedule; an interrupted fine-tune ends with the weights of an uninterrupted one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from fairaudit_diffusion.finetune import TrainConfig, finetune, prepare_unet
from fairaudit_diffusion.generator import DiffusionCounterfactuals
from fairaudit_diffusion.images import latent_posterior
from fairaudit_diffusion.pipeline import load_components
from fairaudit_diffusion.train_state import load_train_state

from fairaudit.base import RunContext


class Interrupted(RuntimeError):
    pass


def _captions(rows: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Random partial captions: the numpy generator's state matters for an exact resume."""
    return ["chest x-ray, with support devices" if rng.random() < 0.5 else "" for _ in rows]


def _interrupting(after_calls: int):
    calls = {"n": 0}

    def fn(rows: np.ndarray, rng: np.random.Generator) -> list[str]:
        if calls["n"] == after_calls:
            raise Interrupted("simulated crash")
        calls["n"] += 1
        return _captions(rows, rng)

    return fn


def _train(tiny_dir: Path, latents, cfg: TrainConfig, caption_fn=_captions):
    import torch

    torch.manual_seed(0)  # LoRA's initial A matrices
    c = load_components(tiny_dir, "cpu")
    return c, finetune(c, *latents, caption_fn, cfg)


def _trained(c, mode: str) -> dict:
    return {
        k: v.clone()
        for k, v in c.unet.state_dict().items()
        if mode == "unet" or "lora_" in k
    }


@pytest.fixture(scope="module")
def latents(tiny_dir: Path, dataset):
    c = load_components(tiny_dir, "cpu")
    return latent_posterior(c, dataset.images, 32, 8)


@pytest.mark.parametrize("mode", ["lora", "unet"])
def test_interrupted_finetune_resumes_to_the_same_weights(
    mode: str, tiny_dir: Path, latents, tmp_path: Path
) -> None:
    import torch

    common = {
        "mode": mode,
        "lr": 1e-2 if mode == "lora" else 1e-3,
        "max_steps": 7,  # 16 images in batches of 4: the loader's shuffle crosses epochs
        "batch_size": 4,
        "progress": False,
        "lr_schedule": "cosine",
        "lr_warmup_steps": 2,
        "ema_decay": 0.8,
        "checkpoint_every": 2,
    }
    whole, log_whole = _train(tiny_dir, latents, TrainConfig(**common, state_path=tmp_path / "a.safetensors"))
    state_path = tmp_path / "b.safetensors"
    with pytest.raises(Interrupted):  # dies inside step 5, after the state of step 4 was saved
        _train(tiny_dir, latents, TrainConfig(**common, state_path=state_path), _interrupting(5))
    assert load_train_state(state_path).step == 4
    resumed, log = _train(tiny_dir, latents, TrainConfig(**common, state_path=state_path))
    assert log.resumed_from == 4 and len(log.lrs) == 3 and log.checkpoints == [6, 7]
    assert log.losses == log_whole.losses and log.samples == log_whole.samples == 7 * 4
    a, b = _trained(whole, mode), _trained(resumed, mode)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the saved state holds raw weights, moments and the EMA; the UNet ends with the EMA weights
    state = load_train_state(state_path)
    assert state.step == 7 and set(state.params) == set(state.ema) == set(state.adam)
    assert all(float(m["step"]) == 7 for m in state.adam.values())
    named = dict(resumed.unet.named_parameters())
    assert all(torch.equal(named[k].detach(), state.ema[k]) for k in state.ema)
    assert any(not torch.equal(state.params[k], state.ema[k]) for k in state.params)


def test_a_state_from_other_settings_is_not_resumed(tiny_dir: Path, latents, tmp_path: Path) -> None:
    cfg = {"mode": "lora", "lr": 1e-2, "max_steps": 2, "batch_size": 4, "progress": False, "checkpoint_every": 1}
    path = tmp_path / "state.safetensors"
    _train(tiny_dir, latents, TrainConfig(**cfg, state_path=path))
    with pytest.warns(UserWarning, match="another configuration"):
        _, log = _train(tiny_dir, latents, TrainConfig(**{**cfg, "lr": 5e-3}, state_path=path))
    assert log.resumed_from == 0 and len(log.losses) == 2
    assert load_train_state(path).step == 2


def test_lr_schedule_sets_each_steps_rate(tiny_dir: Path, latents) -> None:
    cfg = TrainConfig(
        mode="lora", lr=0.01, max_steps=5, batch_size=4, progress=False,
        lr_schedule="linear", lr_warmup_steps=2,
    )
    _, log = _train(tiny_dir, latents, cfg)
    assert log.lrs == pytest.approx([0.005, 0.01, 0.01, 0.01 * 2 / 3, 0.01 / 3])


def test_gradient_checkpointing_gives_the_same_gradients(tiny_dir: Path, latents) -> None:
    import torch

    c = load_components(tiny_dir, "cpu")
    torch.manual_seed(0)
    params = prepare_unet(c.unet, "lora", 4)
    g = torch.Generator().manual_seed(0)
    x = latents[0][:4] + torch.randn(latents[0][:4].shape, generator=g)
    t = torch.tensor([10, 200, 500, 900])
    emb = c.encode_text(["chest x-ray"] * 4)
    c.unet.train()

    def grads() -> list:
        for p in params:
            p.grad = None
        c.unet(x, t, encoder_hidden_states=emb).sample.square().mean().backward()
        return [p.grad.clone() for p in params]

    plain = grads()
    c.unet.enable_gradient_checkpointing()
    assert any(getattr(m, "gradient_checkpointing", False) for m in c.unet.modules())
    checkpointed = grads()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, checkpointed, strict=True))
    assert any(float(a.abs().max()) > 0 for a in plain)


def test_generator_resumes_from_its_run_folder(tiny_dir: Path, dataset, tmp_path: Path, fast: dict) -> None:
    import torch

    params = {
        **fast, "max_steps": 4, "model_dir": str(tiny_dir), "finetune": "lora", "lr": 1e-2,
        "checkpoint_every": 2, "ema_decay": 0.5, "gradient_checkpointing": True,
    }
    first = DiffusionCounterfactuals(**params).bind(RunContext(work_dir=tmp_path)).fit(dataset)
    path = tmp_path / "checkpoints" / "sd_counterfactual_train_state.safetensors"
    assert first.train_state_ == str(path) and first.train_log_.checkpoints == [2, 4]
    assert not any(getattr(m, "gradient_checkpointing", False) for m in first.components_.unet.modules())
    again = DiffusionCounterfactuals(**params).bind(RunContext(work_dir=tmp_path)).fit(dataset)
    assert again.train_log_.resumed_from == 4 and again.train_log_.lrs == []  # nothing left to train
    assert again.train_log_.losses == first.train_log_.losses
    a = {k: v for k, v in first.components_.unet.state_dict().items() if "lora_" in k}
    b = {k: v for k, v in again.components_.unet.state_dict().items() if "lora_" in k}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert again.eval_loss_after_ == pytest.approx(first.eval_loss_after_)
    flipped = dataset.images.copy()
    flipped[0] = 1.0 - flipped[0]  # other data, same settings: the state is not theirs
    other = dataclasses.replace(dataset, images=flipped)
    with pytest.warns(UserWarning, match="another configuration or data"):
        fresh = DiffusionCounterfactuals(**params).bind(RunContext(work_dir=tmp_path)).fit(other)
    assert fresh.train_log_.resumed_from == 0 and len(fresh.train_log_.lrs) == 4


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("lr_schedule", "step", "lr_schedule"),
        ("lr_warmup_steps", -1, "lr_warmup_steps"),
        ("ema_decay", 1.0, "ema_decay"),
        ("checkpoint_every", -2, "checkpoint_every"),
        ("validation_every", -1, "validation_every"),
        ("editor", "pix2pix", "editor"),
        ("validation_prompts", "chest x-ray", "validation_prompts"),
    ],
)
def test_bad_settings_are_named(param: str, value, match: str, dataset, fast: dict) -> None:
    with pytest.raises(ValueError, match=match):
        DiffusionCounterfactuals(model_dir="tiny://32", **{**fast, param: value}).fit(dataset)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs CUDA")
def test_real_weight_options_on_cuda(tiny_dir: Path, dataset, tmp_path: Path, fast: dict) -> None:
    """bf16, gradient checkpointing, EMA, schedule, state, validation and img2img on the GPU."""
    import torch

    params = {
        **fast, "device": "cuda", "mixed_precision": True, "max_steps": 6, "model_dir": str(tiny_dir),
        "finetune": "unet", "lr": 1e-3, "gradient_checkpointing": True, "ema_decay": 0.9,
        "lr_schedule": "cosine", "lr_warmup_steps": 2, "checkpoint_every": 3, "validation_every": 3,
        "editor": "img2img", "strength": 0.5,
    }
    g = DiffusionCounterfactuals(**params).bind(RunContext(work_dir=tmp_path)).fit(dataset)
    assert all(p.is_cuda for p in g.components_.unet.parameters())
    assert g.train_log_.checkpoints == [3, 6] and sorted(g.train_log_.validation) == [0, 3, 6]
    assert all(np.isfinite(g.train_log_.losses))
    out = g.counterfactual(dataset.images[:4], {"factor": "device", "to": 0})
    assert out.shape == dataset.images[:4].shape and np.isfinite(out).all()
    again = DiffusionCounterfactuals(**params).bind(RunContext(work_dir=tmp_path)).fit(dataset)
    assert again.train_log_.resumed_from == 6
    a, b = g.components_.unet.state_dict(), again.components_.unet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
