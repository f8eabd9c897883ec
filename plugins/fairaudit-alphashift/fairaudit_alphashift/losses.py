"""Losses of the alpha-shift autoencoder: SSIM (+ optional MSE) weighted by the learned
attention map, the beta-weighted KL term, and the penalty pulling the map's mean to 1."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

_C1 = 0.01**2  # (K1 * L)^2 with data range L = 1
_C2 = 0.03**2


def gaussian_kernel_1d(size: int, sigma: float = 1.5, *,
                       device: torch.device | str = "cpu") -> torch.Tensor:
    """Normalised 1-D Gaussian taps, shape ``(size,)``."""
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def window_size_for(image_size: int) -> int:
    """11 px (Wang et al. 2004) for images of 64 px or more, 7 px below."""
    return 11 if image_size >= 64 else 7


def _gaussian_blur(t: torch.Tensor, size: int) -> torch.Tensor:
    """Separable Gaussian blur (sigma 1.5) of every channel, reflect-padded to keep the size."""
    c = t.shape[1]
    g = gaussian_kernel_1d(size, device=t.device).to(t.dtype)
    pad = size // 2
    t = F.pad(t, (pad, pad, pad, pad), mode="reflect")
    t = F.conv2d(t, g.view(1, 1, 1, size).expand(c, 1, 1, size), groups=c)
    return F.conv2d(t, g.view(1, 1, size, 1).expand(c, 1, size, 1), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """Per-pixel SSIM of single-channel images in [0, 1], same shape as the input.

    Local statistics use a Gaussian window (sigma 1.5, separable) with reflect padding, so
    the map covers every pixel and can be weighted pixel by pixel.
    """
    size = window or window_size_for(x.shape[-1])
    _n, c = x.shape[:2]
    stats = _gaussian_blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), size)
    mu_x, mu_y, xx, yy, xy = stats.split(c, dim=1)
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    den = (mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2)
    return num / den


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image, shape ``(n,)``."""
    return ssim_map(x, y).flatten(1).mean(dim=1)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) summed over latent dimensions, per sample."""
    return -0.5 * torch.sum(1.0 + logvar - mu**2 - logvar.exp(), dim=1)


@dataclass
class LossTerms:
    """The parts of one batch's loss (floats, for logging)."""

    total: float
    ssim: float
    mse: float
    kl: float
    attention: float


def vae_loss(recon: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             weight_map: torch.Tensor | None, *, beta: float, ssim_weight: float,
             mse_weight: float, attention_penalty: float) -> tuple[torch.Tensor, LossTerms]:
    """Weighted SSIM/MSE reconstruction + beta * KL + attention-mean penalty.

    The reconstruction terms are per-pixel means, weighted by the learned map ``W`` (when
    given); the KL term is per sample and divided by the number of pixels so that ``beta``
    does not depend on the image size.  The penalty ``attention_penalty * (mean(W) - 1)^2``
    keeps the map from shrinking the loss by shrinking itself.
    """
    w = weight_map if weight_map is not None else torch.ones_like(target[:1])
    n_pixels = float(target[0].numel())
    zero = recon.new_zeros(())
    ssim_term = (w * (1.0 - ssim_map(recon, target))).mean() if ssim_weight > 0 else zero
    mse_term = (w * (recon - target) ** 2).mean() if mse_weight > 0 else zero
    kl_term = kl_divergence(mu, logvar).mean() / n_pixels
    att_term = ((w.mean() - 1.0) ** 2) if weight_map is not None else zero
    total = (ssim_weight * ssim_term + mse_weight * mse_term + beta * kl_term
             + attention_penalty * att_term)
    terms = LossTerms(float(total.detach()), float(ssim_term.detach()), float(mse_term.detach()),
                      float(kl_term.detach()), float(att_term.detach()))
    return total, terms
