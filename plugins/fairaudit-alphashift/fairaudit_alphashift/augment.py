"""Random erasing (Zhong et al., 2020) for the denoising objective: corrupt the input only."""

from __future__ import annotations

import math

import torch


def random_erase(x: torch.Tensor, prob: float, generator: torch.Generator, *,
                 area: tuple[float, float] = (0.02, 0.2),
                 aspect: tuple[float, float] = (0.3, 3.3)) -> torch.Tensor:
    """A copy of ``x`` (n, C, H, W) where each image, with probability ``prob``, has one
    rectangle (``area`` fraction of the image, log-uniform ``aspect`` ratio) replaced by
    uniform noise.  ``x`` itself is not modified."""
    if prob <= 0:
        return x
    n, _, h, w = x.shape
    out = x.clone()
    draws = torch.rand(n, 5, generator=generator)  # on CPU: reproducible on any device
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    for i in range(n):
        if float(draws[i, 0]) >= prob:
            continue
        frac = area[0] + float(draws[i, 1]) * (area[1] - area[0])
        ratio = math.exp(log_lo + float(draws[i, 2]) * (log_hi - log_lo))
        eh = max(1, min(h, round(math.sqrt(frac * h * w * ratio))))
        ew = max(1, min(w, round(math.sqrt(frac * h * w / ratio))))
        top = int(float(draws[i, 3]) * (h - eh + 1))
        left = int(float(draws[i, 4]) * (w - ew + 1))
        noise = torch.rand(out.shape[1], eh, ew, generator=generator).to(out.device, out.dtype)
        out[i, :, top:top + eh, left:left + ew] = noise
    return out
