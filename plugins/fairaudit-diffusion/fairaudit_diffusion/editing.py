"""DDIM sampling, DDIM inversion and prompt editing of latents (PRISM / LANCE style).

An edit inverts the clean latent of an image under its *source* caption with the
deterministic DDIM update run backwards (guidance 1), up to ``strength`` of the schedule,
then denoises from there under the *target* caption with classifier-free guidance.
Starting from the inverted latent keeps the subject's identity; an optional blend pulls
every denoising step toward the inversion trajectory (everywhere, or outside an automatic
DiffEdit-style mask where the two captions' noise predictions disagree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DDIMPlan:
    """The DDIM timesteps an operation runs through (descending) and their ``alphas_cumprod``."""

    timesteps: tuple[int, ...]
    alphas: tuple[float, ...]
    final_alpha: float
    prediction_type: str = "epsilon"

    def __len__(self) -> int:
        return len(self.timesteps)


def ddim_plan(scheduler: Any, num_inference_steps: int, strength: float = 1.0) -> DDIMPlan:
    """The last ``round(strength * num_inference_steps)`` DDIM steps of ``scheduler``."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must lie in [0, 1], got {strength}")
    if num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
    scheduler.set_timesteps(num_inference_steps)
    steps = [int(t) for t in scheduler.timesteps]
    k = min(len(steps), round(len(steps) * strength))
    used = steps[len(steps) - k :]
    alphas = scheduler.alphas_cumprod
    return DDIMPlan(
        tuple(used),
        tuple(float(alphas[t]) for t in used),
        float(scheduler.final_alpha_cumprod),
        str(scheduler.config.prediction_type),
    )


def _move(x: torch.Tensor, eps: torch.Tensor, a_from: float, a_to: float) -> torch.Tensor:
    """Deterministic DDIM move of ``x`` from noise level ``a_from`` to ``a_to`` along ``eps``."""
    x0 = (x - (1.0 - a_from) ** 0.5 * eps) / a_from**0.5
    return a_to**0.5 * x0 + (1.0 - a_to) ** 0.5 * eps


def predict_noise(
    unet: Any,
    x: torch.Tensor,
    t: int,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    guidance: float,
    alpha: float,
    prediction_type: str = "epsilon",
) -> torch.Tensor:
    """Classifier-free-guided noise prediction (conditional only at ``guidance == 1``)."""
    import torch

    timestep = torch.tensor(t, device=x.device)
    if uncond is None or guidance == 1.0:
        out = unet(x, timestep, encoder_hidden_states=cond).sample
    else:
        both = unet(
            torch.cat([x, x]), timestep, encoder_hidden_states=torch.cat([uncond, cond])
        ).sample
        out_u, out_c = both.chunk(2)
        out = out_u + guidance * (out_c - out_u)
    if prediction_type == "v_prediction":
        out = alpha**0.5 * out + (1.0 - alpha) ** 0.5 * x
    return out


def ddim_invert(
    unet: Any, plan: DDIMPlan, latents: torch.Tensor, cond: torch.Tensor
) -> list[torch.Tensor]:
    """Invert clean ``latents`` under ``cond``; the trajectory, clean first, noisiest last."""
    import torch

    x, a_prev = latents, plan.final_alpha
    trajectory = [x]
    with torch.no_grad():
        for t, a in zip(reversed(plan.timesteps), reversed(plan.alphas), strict=True):
            eps = predict_noise(unet, x, t, cond, None, 1.0, a, plan.prediction_type)
            x = _move(x, eps, a_prev, a)
            trajectory.append(x)
            a_prev = a
    return trajectory


def ddim_denoise(
    unet: Any,
    plan: DDIMPlan,
    latents: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    guidance: float,
    *,
    reference: list[torch.Tensor] | None = None,
    blend: float = 0.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Denoise ``latents`` (at the plan's first level) to clean latents under ``cond``.

    ``reference`` is an inversion trajectory (:func:`ddim_invert`); after each step the
    latent moves a fraction ``blend`` toward the reference at the same noise level, only
    outside ``mask`` (1 = edit region) when a mask is given.
    """
    import torch

    levels = (*plan.alphas, plan.final_alpha)
    k = len(plan)
    x = latents
    with torch.no_grad():
        for i, t in enumerate(plan.timesteps):
            eps = predict_noise(unet, x, t, cond, uncond, guidance, levels[i], plan.prediction_type)
            x = _move(x, eps, levels[i], levels[i + 1])
            if reference is not None and blend > 0.0:
                weight = blend if mask is None else blend * (1.0 - mask)
                x = x + weight * (reference[k - 1 - i] - x)
    return x


def edit_latents(
    unet: Any,
    plan: DDIMPlan,
    latents: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    uncond: torch.Tensor | None,
    guidance: float,
    *,
    blend: float = 0.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Invert ``latents`` under ``source`` embeddings, then denoise under ``target`` ones."""
    trajectory = ddim_invert(unet, plan, latents, source)
    return ddim_denoise(
        unet,
        plan,
        trajectory[-1],
        target,
        uncond,
        guidance,
        reference=trajectory,
        blend=blend,
        mask=mask,
    )


def sample_latents(
    unet: Any,
    plan: DDIMPlan,
    shape: tuple[int, ...],
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    guidance: float,
    generator: torch.Generator,
    device: str,
) -> torch.Tensor:
    """Text-to-image DDIM sampling from Gaussian noise (use a plan with strength 1)."""
    import torch

    noise = torch.randn(shape, generator=generator).to(device)
    return ddim_denoise(unet, plan, noise, cond, uncond, guidance)


def _noisy(latents: torch.Tensor, noise: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha**0.5 * latents + (1.0 - alpha) ** 0.5 * noise


def edit_mask(
    unet: Any,
    plan: DDIMPlan,
    latents: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    generator: torch.Generator,
    *,
    n_samples: int = 4,
    threshold: float = 0.5,
) -> torch.Tensor:
    """DiffEdit-style mask ``(n, 1, h, w)``: where the two captions predict different noise."""
    import torch

    if len(plan) == 0:
        return torch.zeros_like(latents[:, :1])
    t = plan.timesteps[len(plan) // 2]
    alpha = plan.alphas[len(plan) // 2]
    total = torch.zeros_like(latents[:, :1])
    with torch.no_grad():
        for _ in range(n_samples):
            noisy = _noisy(
                latents, torch.randn(latents.shape, generator=generator).to(latents.device), alpha
            )
            e_tgt = predict_noise(unet, noisy, t, target, None, 1.0, alpha, plan.prediction_type)
            e_src = predict_noise(unet, noisy, t, source, None, 1.0, alpha, plan.prediction_type)
            total += (e_tgt - e_src).abs().mean(dim=1, keepdim=True)
    peak = total.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    return (total / peak > threshold).float()


def classify_by_denoising(
    unet: Any,
    scheduler: Any,
    latents: torch.Tensor,
    candidates: list[torch.Tensor],
    generator: torch.Generator,
    n_trials: int = 8,
) -> np.ndarray:
    """Mean denoising error ``(n, len(candidates))`` of each latent under each caption embedding.

    The caption with the lowest error is the model's zero-shot guess of the image's
    description (diffusion classifier; the same noise and timesteps for every candidate).
    """
    import torch

    n_train = int(scheduler.config.num_train_timesteps)
    steps = np.linspace(0.1 * n_train, 0.8 * n_train, max(n_trials, 1)).astype(int)
    errors = torch.zeros(len(latents), len(candidates), device=latents.device)
    with torch.no_grad():
        for t in steps:
            alpha = float(scheduler.alphas_cumprod[int(t)])
            noise = torch.randn(latents.shape, generator=generator).to(latents.device)
            noisy = _noisy(latents, noise, alpha)
            for j, cond in enumerate(candidates):
                eps = predict_noise(
                    unet,
                    noisy,
                    int(t),
                    cond,
                    None,
                    1.0,
                    alpha,
                    str(scheduler.config.prediction_type),
                )
                errors[:, j] += ((eps - noise) ** 2).mean(dim=(1, 2, 3))
    return (errors / len(steps)).float().cpu().numpy()
