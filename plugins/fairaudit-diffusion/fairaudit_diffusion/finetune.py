"""Fine-tuning the UNet on captioned images (PRISM: epsilon-prediction MSE, DDPM noise schedule).

Only the UNet learns: either LoRA adapters on its attention projections (``"lora"``, via
peft) or every UNet weight (``"unet"``).  The VAE and the text encoder stay frozen, so the
latents and caption embeddings are computed once and reused.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fairaudit import PluginError
from fairaudit.training import (
    check_finite,
    make_loader,
    progress,
    rank,
    set_epoch,
    torch_generator,
    unwrap,
    wrap_ddp,
)

if TYPE_CHECKING:
    import torch

    from fairaudit_diffusion.pipeline import SDComponents

FinetuneMode = Literal["lora", "unet", "none"]
#: UNet modules that receive LoRA adapters (attention projections, as in diffusers' examples).
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
#: ``caption_fn(rows, rng) -> captions`` for the training rows of one batch.
CaptionFn = Callable[[np.ndarray, np.random.Generator], list[str]]


@dataclass
class TrainConfig:
    """Settings of one fine-tuning run (AdamW as in PRISM: betas 0.9/0.999, wd 1e-2)."""

    mode: FinetuneMode = "lora"
    lr: float = 1e-4
    max_steps: int = 500
    batch_size: int = 8
    seed: int = 0
    device: str = "cpu"
    mixed_precision: bool = False
    progress: bool = True
    lora_rank: int = 4
    lora_alpha: float | None = None
    weight_decay: float = 1e-2
    grad_clip: float = 1.0


@dataclass
class TrainLog:
    """Per-step training losses and timing."""

    losses: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    samples: int = 0
    trainable_params: int = 0

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")

    def throughput(self, batch_size: int, skip: int = 0) -> float:
        """Samples per second over the steps after the first ``skip`` (warm-up) ones."""
        timed = self.step_seconds[skip:]
        return batch_size * len(timed) / sum(timed) if timed and sum(timed) > 0 else float("nan")


def prepare_unet(
    unet: Any, mode: FinetuneMode, lora_rank: int = 4, lora_alpha: float | None = None
) -> list[torch.nn.Parameter]:
    """Freeze ``unet`` except what ``mode`` trains (adding LoRA adapters if needed)."""
    unet.requires_grad_(False)
    if mode == "unet":
        unet.requires_grad_(True)
    elif mode == "lora":
        try:
            from peft import LoraConfig
        except ImportError as exc:  # pragma: no cover - peft is a declared dependency
            raise PluginError("finetune='lora' needs peft: pip install peft") from exc
        unet.add_adapter(
            LoraConfig(
                r=lora_rank,
                lora_alpha=lora_alpha if lora_alpha is not None else lora_rank,
                init_lora_weights="gaussian",
                target_modules=list(LORA_TARGETS),
            )
        )
    elif mode != "none":
        raise ValueError(f"finetune must be 'lora', 'unet' or 'none', got {mode!r}")
    return [p for p in unet.parameters() if p.requires_grad]


def trained_state(unet: Any, mode: FinetuneMode) -> dict[str, torch.Tensor]:
    """The weights ``mode`` trained: LoRA adapter tensors or the whole UNet state dict."""
    if mode == "lora":
        from peft.utils import get_peft_model_state_dict

        return dict(get_peft_model_state_dict(unet))
    return dict(unet.state_dict())


def load_trained_state(
    unet: Any,
    state: dict[str, torch.Tensor],
    mode: FinetuneMode,
    lora_rank: int = 4,
    lora_alpha: float | None = None,
) -> None:
    """Put weights saved by :func:`trained_state` into a freshly loaded ``unet``."""
    if mode == "lora":
        from peft.utils import set_peft_model_state_dict

        prepare_unet(unet, "lora", lora_rank, lora_alpha)
        result = set_peft_model_state_dict(unet, state)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise PluginError(
                f"LoRA checkpoint does not match the UNet: unexpected keys {unexpected[:3]}"
            )
        unet.requires_grad_(False)
    else:
        unet.load_state_dict(state)


def _batches(loader: Any) -> Iterator[Any]:
    for epoch in itertools.count():
        set_epoch(loader, epoch)
        yield from loader


def _autocast(device: str, enabled: bool) -> Any:
    import torch

    return torch.autocast(
        device_type="cuda" if device.startswith("cuda") else "cpu",
        dtype=torch.bfloat16,
        enabled=enabled,
    )


def diffusion_target(
    scheduler: Any, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """What the UNet predicts: the noise (epsilon) or the velocity (v-prediction pipelines)."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise PluginError(f"unsupported prediction_type {kind!r}")


def denoising_loss(
    components: SDComponents,
    latents: torch.Tensor,
    embeddings: torch.Tensor,
    timesteps: torch.Tensor,
    noise: torch.Tensor,
) -> float:
    """Mean training loss on fixed latents, noise and timesteps (deterministic, no gradient)."""
    import torch
    import torch.nn.functional as F

    sched, dev = components.train_scheduler, components.device
    latents, noise, timesteps = latents.to(dev), noise.to(dev), timesteps.to(dev)
    with torch.no_grad():
        noisy = sched.add_noise(latents, noise, timesteps)
        pred = components.unet(noisy, timesteps, encoder_hidden_states=embeddings.to(dev)).sample
        target = diffusion_target(sched, latents, noise, timesteps)
        return float(F.mse_loss(pred.float(), target.float()).item())


def finetune(
    components: SDComponents,
    latent_mean: torch.Tensor,
    latent_std: torch.Tensor,
    caption_fn: CaptionFn,
    cfg: TrainConfig,
) -> TrainLog:
    """Train the UNet for ``cfg.max_steps`` steps on VAE latents and their captions.

    Parameters
    ----------
    components:
        Loaded pipeline parts; ``components.unet`` is modified in place.
    latent_mean, latent_std:
        Scaled VAE posterior of every training image (CPU tensors ``(n, 4, h, w)``);
        each step draws a fresh latent sample from it.
    caption_fn:
        Captions of a batch's rows (may drop fields or whole captions at random).
    cfg:
        Optimiser and loop settings.
    """
    import torch
    import torch.nn.functional as F

    log = TrainLog()
    if cfg.mode == "none" or cfg.max_steps <= 0:
        return log
    unet, device, sched = components.unet, components.device, components.train_scheduler
    params = prepare_unet(unet, cfg.mode, cfg.lora_rank, cfg.lora_alpha)
    log.trainable_params = int(sum(p.numel() for p in params))
    model = wrap_ddp(unet, device)
    optimiser = torch.optim.AdamW(
        params, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay, eps=1e-8
    )
    n = len(latent_mean)
    loader = make_loader(
        np.arange(n), batch_size=min(cfg.batch_size, n), shuffle=True, seed=cfg.seed
    )
    batches = _batches(loader)
    rng = np.random.default_rng(cfg.seed + 7919 * rank())
    gen = torch_generator(cfg.seed + 1 + 7919 * rank())
    n_train = int(sched.config.num_train_timesteps)
    model.train()
    start = time.perf_counter()
    for step in progress(range(cfg.max_steps), desc="sd fine-tuning", enabled=cfg.progress):
        tick = time.perf_counter()
        (rows,) = next(batches)
        mean, std = latent_mean[rows], latent_std[rows]
        latents = mean + std * torch.randn(mean.shape, generator=gen)
        noise = torch.randn(mean.shape, generator=gen)
        timesteps = torch.randint(0, n_train, (len(rows),), generator=gen)
        latents, noise, timesteps = latents.to(device), noise.to(device), timesteps.to(device)
        embeddings = components.encode_text(caption_fn(rows.numpy(), rng))
        noisy = sched.add_noise(latents, noise, timesteps)
        with _autocast(device, cfg.mixed_precision):
            pred = model(noisy, timesteps, encoder_hidden_states=embeddings).sample
        loss = F.mse_loss(pred.float(), diffusion_target(sched, latents, noise, timesteps).float())
        value = float(loss.detach().item())
        check_finite(value, f"sd fine-tuning step {step}")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimiser.step()
        log.losses.append(value)
        log.samples += len(rows)
        log.step_seconds.append(time.perf_counter() - tick)
    log.seconds = time.perf_counter() - start
    unwrap(model).eval()
    unet.requires_grad_(False)
    return log
