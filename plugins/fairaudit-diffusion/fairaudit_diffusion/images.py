"""Conversions between audit images and the pixel space of Stable Diffusion."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def to_model_space(images: np.ndarray, resolution: int) -> torch.Tensor:
    """``(n, C, H, W)`` in [0, 1] (C = 1 or 3) -> ``(n, 3, R, R)`` float32 in [-1, 1]."""
    import torch
    import torch.nn.functional as F

    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (n, 1|3, H, W), got {arr.shape}")
    x = torch.from_numpy(np.clip(arr, 0.0, 1.0))
    if x.shape[-2:] != (resolution, resolution):
        x = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True
        )
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return x * 2.0 - 1.0


def from_model_space(pixels: torch.Tensor, size: tuple[int, int], channels: int = 1) -> np.ndarray:
    """``(n, 3, R, R)`` in [-1, 1] -> ``(n, channels, H, W)`` float32 in [0, 1]."""
    import torch.nn.functional as F

    x = (pixels.detach().float().cpu() + 1.0) / 2.0
    if channels == 1:
        x = x.mean(dim=1, keepdim=True)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return np.clip(x.numpy(), 0.0, 1.0).astype(np.float32)
