"""Fine-tuning the UNet on captioned images (PRISM: epsilon-prediction MSE, DDPM noise schedule).

Only the UNet learns: either LoRA adapters on its attention projections (``"lora"``, via
peft) or every UNet weight (``"unet"``).  The VAE and the text encoder stay frozen, so the
latents and caption embeddings are computed once and reused.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fairaudit import PluginError
from fairaudit.errors import CheckpointError
from fairaudit.training import (
    check_finite,
    is_main_process,
    make_loader,
    progress,
    rank,
    set_epoch,
    torch_generator,
    unwrap,
    wrap_ddp,
)
from fairaudit_diffusion.ema import EMA
from fairaudit_diffusion.schedule import LRSchedule, check_schedule, lr_factor
from fairaudit_diffusion.train_state import TrainState, load_train_state, read_fingerprint, save_train_state

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
    lr_schedule: LRSchedule = "constant"
    lr_warmup_steps: int = 0
    ema_decay: float = 0.0  #: 0 = no EMA; else the EMA weights end up in the UNet
    gradient_checkpointing: bool = False
    checkpoint_every: int = 0  #: 0 = no resumable state; else every this many steps and at the end
    state_path: Path | None = None  #: where the resumable state lives (resumed when it matches)
    validation_every: int = 0  #: 0 = no validation samples; else ``on_validation`` every this many steps

    def fingerprint(self, identity: Mapping[str, Any] | None = None) -> str:
        """Fingerprint of what decides the training trajectory (not device, progress or I/O)."""
        from fairaudit_diffusion.train_state import config_fingerprint

        keys = (
            "mode", "lr", "max_steps", "batch_size", "seed", "mixed_precision", "lora_rank",
            "lora_alpha", "weight_decay", "grad_clip", "lr_schedule", "lr_warmup_steps", "ema_decay",
        )
        return config_fingerprint({**{k: getattr(self, k) for k in keys}, **dict(identity or {})})


@dataclass
class TrainLog:
    """Per-step training losses and timing."""

    losses: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    samples: int = 0
    trainable_params: int = 0
    resumed_from: int = 0  #: step a saved state was resumed at (0 = started afresh)
    checkpoints: list[int] = field(default_factory=list)  #: steps at which the state was saved
    lrs: list[float] = field(default_factory=list)  #: learning rate of each step run here
    validation: dict[int, Any] = field(default_factory=dict)  #: step -> what ``on_validation`` returned

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


#: ``on_validation(step) -> images``: called with the EMA weights (if any) in the UNet, in eval
#: mode, on the main process; the images (a CPU tensor) are kept in ``TrainLog.validation`` and
#: in the resumable state.
ValidationFn = Callable[[int], "torch.Tensor"]


def finetune(
    components: SDComponents,
    latent_mean: torch.Tensor,
    latent_std: torch.Tensor,
    caption_fn: CaptionFn,
    cfg: TrainConfig,
    *,
    identity: Mapping[str, Any] | None = None,
    on_validation: ValidationFn | None = None,
) -> TrainLog:
    """Train the UNet for ``cfg.max_steps`` steps on VAE latents and their captions.

    Parameters
    ----------
    components:
        Loaded pipeline parts; ``components.unet`` is modified in place (and holds the EMA
        weights at the end when ``cfg.ema_decay > 0``).
    latent_mean, latent_std:
        Scaled VAE posterior of every training image (CPU tensors ``(n, 4, h, w)``);
        each step draws a fresh latent sample from it.
    caption_fn:
        Captions of a batch's rows (may drop fields or whole captions at random).
    cfg:
        Optimiser, schedule, EMA, checkpoint and loop settings.
    identity:
        What else decides the trajectory (pipeline, data, captions): part of the fingerprint
        a saved state must match to be resumed.
    on_validation:
        Draws validation samples every ``cfg.validation_every`` steps (and at steps 0 and
        ``max_steps``).
    """
    import torch
    import torch.nn.functional as F

    log = TrainLog()
    if cfg.mode == "none" or cfg.max_steps <= 0:
        return log
    check_schedule(cfg.lr_schedule, cfg.lr_warmup_steps)
    unet, device, sched = components.unet, components.device, components.train_scheduler
    params = prepare_unet(unet, cfg.mode, cfg.lora_rank, cfg.lora_alpha)
    names = [name for name, p in unet.named_parameters() if p.requires_grad]
    log.trainable_params = int(sum(p.numel() for p in params))
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    model = wrap_ddp(unet, device)
    optimiser = torch.optim.AdamW(
        params, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay, eps=1e-8
    )
    ema = EMA(params, cfg.ema_decay) if cfg.ema_decay > 0 else None
    n = len(latent_mean)
    loader = make_loader(
        np.arange(n), batch_size=min(cfg.batch_size, n), shuffle=True, seed=cfg.seed
    )
    batches = _batches(loader)
    rng = np.random.default_rng(cfg.seed + 7919 * rank())
    gen = torch_generator(cfg.seed + 1 + 7919 * rank())
    fingerprint = cfg.fingerprint(identity)
    first = 0
    state = _matching_state(cfg.state_path, fingerprint)
    if state is not None:
        first = _restore(state, names, params, optimiser, ema, rng, gen, log)
        for _ in range(first):  # replay the loader's shuffles up to the saved step
            next(batches)

    def validate(step: int) -> None:
        if on_validation is None or not is_main_process() or step in log.validation:
            return
        unet.eval()
        with ema.swapped_in() if ema is not None else contextlib.nullcontext():
            log.validation[step] = on_validation(step)
        model.train()

    def save(step: int) -> None:
        if cfg.state_path is not None and is_main_process():
            _save(cfg.state_path, step, fingerprint, names, params, optimiser, ema, rng, gen, log)
            log.checkpoints.append(step)

    if cfg.validation_every > 0:
        validate(first)
    n_train = int(sched.config.num_train_timesteps)
    model.train()
    start = time.perf_counter()
    for step in progress(
        range(first, cfg.max_steps), desc="sd fine-tuning", total=cfg.max_steps - first, enabled=cfg.progress
    ):
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
        lr = cfg.lr * lr_factor(
            step, schedule=cfg.lr_schedule, warmup_steps=cfg.lr_warmup_steps, total_steps=cfg.max_steps
        )
        for group in optimiser.param_groups:
            group["lr"] = lr
        optimiser.step()
        if ema is not None:
            ema.update()
        log.losses.append(value)
        log.lrs.append(lr)
        log.samples += len(rows)
        log.step_seconds.append(time.perf_counter() - tick)
        done = step + 1
        if cfg.validation_every > 0 and (done % cfg.validation_every == 0 or done == cfg.max_steps):
            validate(done)
        if cfg.checkpoint_every > 0 and (done % cfg.checkpoint_every == 0 or done == cfg.max_steps):
            save(done)
    log.seconds = time.perf_counter() - start
    if ema is not None:
        ema.copy_to_params()
    if cfg.gradient_checkpointing:
        unet.disable_gradient_checkpointing()
    unwrap(model).eval()
    unet.requires_grad_(False)
    return log


def _matching_state(path: Path | None, fingerprint: str) -> TrainState | None:
    """The saved state at ``path`` when it was written under the same configuration."""
    if path is None or not Path(path).is_file():
        return None
    found = read_fingerprint(path)
    if found != fingerprint:
        warnings.warn(
            f"training state {path} was written under another configuration or data "
            f"(fingerprint {found} != {fingerprint}); fine-tuning starts afresh and overwrites it",
            stacklevel=3,
        )
        return None
    return load_train_state(path)


def _restore(
    state: TrainState,
    names: list[str],
    params: list[torch.nn.Parameter],
    optimiser: torch.optim.Optimizer,
    ema: EMA | None,
    rng: np.random.Generator,
    gen: torch.Generator,
    log: TrainLog,
) -> int:
    """Put ``state`` back into the parameters, optimiser, EMA, generators and log; its step.

    The resume is exact on one process; under DDP ranks other than 0 continue with fresh
    random streams (the state holds rank 0's generators only)."""
    import torch

    if set(state.params) != set(names):
        missing = sorted(set(names) - set(state.params))[:3]
        raise CheckpointError(f"training state does not match the trainable parameters (missing {missing})")
    with torch.no_grad():
        for name, p in zip(names, params, strict=True):
            p.copy_(state.params[name].to(p.device, p.dtype))
            moments = state.adam.get(name)
            if moments:
                optimiser.state[p] = {
                    "step": moments["step"].clone().float(),
                    "exp_avg": moments["exp_avg"].to(p.device, p.dtype).clone(),
                    "exp_avg_sq": moments["exp_avg_sq"].to(p.device, p.dtype).clone(),
                }
        if ema is not None:
            for name, shadow in zip(names, ema.shadow, strict=True):
                if name not in state.ema:
                    raise CheckpointError(f"training state has no EMA weights for {name}")
                shadow.copy_(state.ema[name].to(shadow.device))
    if rank() == 0:
        rng.bit_generator.state = state.numpy_rng
        gen.set_state(state.torch_rng)
    else:  # the file holds rank 0's generators: other ranks draw fresh, distinct streams
        fresh = int(np.random.SeedSequence([state.step, rank(), len(state.losses)]).generate_state(1)[0])
        rng.bit_generator.state = np.random.default_rng(fresh).bit_generator.state
        gen.manual_seed(fresh + 1)
    log.losses = list(state.losses)
    log.samples = state.samples
    log.validation = dict(state.validation)
    log.resumed_from = state.step
    return state.step


def _save(
    path: Path,
    step: int,
    fingerprint: str,
    names: list[str],
    params: list[torch.nn.Parameter],
    optimiser: torch.optim.Optimizer,
    ema: EMA | None,
    rng: np.random.Generator,
    gen: torch.Generator,
    log: TrainLog,
) -> None:
    adam = {
        name: {k: optimiser.state[p][k] for k in ("step", "exp_avg", "exp_avg_sq")}
        for name, p in zip(names, params, strict=True)
        if optimiser.state.get(p)
    }
    save_train_state(
        path,
        TrainState(
            step=step,
            fingerprint=fingerprint,
            params={name: p.detach() for name, p in zip(names, params, strict=True)},
            adam=adam,
            ema={name: s for name, s in zip(names, ema.shadow, strict=True)} if ema is not None else {},
            torch_rng=gen.get_state(),
            numpy_rng=rng.bit_generator.state,
            losses=list(log.losses),
            samples=log.samples,
            validation={s: v for s, v in log.validation.items() if v is not None},
        ),
    )
