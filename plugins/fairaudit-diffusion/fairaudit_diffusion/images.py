"""Conversions between audit images and the pixel space and latents of Stable Diffusion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fairaudit import DataError
from fairaudit.lazy_images import iter_image_chunks

if TYPE_CHECKING:
    import torch

    from fairaudit_diffusion.pipeline import SDComponents

#: Images converted to pixel space at a time (rounded to a multiple of the VAE batch).
CHUNK_ROWS = 64


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


def chunk_rows(batch_size: int, target: int = CHUNK_ROWS) -> int:
    """Rows per block: a multiple of ``batch_size`` near ``target`` (so the VAE sees the
    same batches as it would on the whole array)."""
    return max(1, batch_size) * max(1, target // max(1, batch_size))


def latent_posterior(
    components: SDComponents, images: Any, resolution: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled VAE posterior mean and std (CPU tensors) of audit images ``(n, C, H, W)``.

    ``images`` may be an array, a memory map or streamed
    :class:`~fairaudit.lazy_images.LazyImages`: they are decoded, resized and encoded one
    block at a time, so only the posterior (mean and std, ``2 x 4 x R/8 x R/8`` floats per image,
    1/24 of the float32 pixels at ``R``) is held, never the whole split in pixel space.
    """
    import torch

    means, stds = [], []
    for block in iter_image_chunks(images, chunk_rows(batch_size)):
        mean, std = components.latent_distribution(to_model_space(block, resolution), batch_size)
        means.append(mean.cpu())
        stds.append(std.cpu())
    if not means:
        raise DataError("no images to encode (the split is empty)")
    return torch.cat(means), torch.cat(stds)
