"""The training images at the networks' working resolution, never held at native resolution.

In-memory images are clipped and resized chunk by chunk into one working-resolution tensor
(the native-resolution set is never copied).  Streamed images
(:class:`~fairaudit.lazy_images.LazyImages`, ``image_folder`` with ``stream: true``) are
decoded and resized per training batch, so memory does not grow with the number of images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fairaudit.lazy_images import LazyImages, is_lazy_images, iter_image_chunks

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset

#: Images clipped and resized per block when building the in-memory working set.
CHUNK_ROWS = 64


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """``(n, C, H, W)`` -> ``(n, C, size, size)``: area averaging down, bilinear up, in [0, 1]."""
    import torch

    if images.shape[-1] == size and images.shape[-2] == size:
        return images.contiguous()
    mode = "area" if images.shape[-1] > size else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return torch.nn.functional.interpolate(images, size=(size, size), mode=mode, **kwargs).clamp(0, 1)


def to_working(block: np.ndarray, size: int) -> torch.Tensor:
    """A block of images in any range -> clipped to [0, 1] and resized to ``size``."""
    import torch

    return resize(torch.from_numpy(np.clip(np.asarray(block, np.float32), 0.0, 1.0)), size)


def resize_in_chunks(images: Any, size: int, chunk_rows: int = CHUNK_ROWS) -> torch.Tensor:
    """Every image (array, memory map or :class:`LazyImages`) at ``size``, one block at a time."""
    import torch

    n, channels = int(images.shape[0]), int(images.shape[1])
    out = torch.empty((n, channels, size, size), dtype=torch.float32)
    start = 0
    for block in iter_image_chunks(images, chunk_rows):
        out[start:start + len(block)] = to_working(block, size)
        start += len(block)
    return out


def resize_masks_in_chunks(masks: Any, size: int, chunk_rows: int = CHUNK_ROWS) -> torch.Tensor:
    """Masks ``(n, H, W)`` (any dtype) as float32 ``(n, size, size)``, one block at a time."""
    import torch

    n = int(masks.shape[0])
    out = torch.empty((n, size, size), dtype=torch.float32)
    for start in range(0, n, chunk_rows):
        block = torch.from_numpy(np.asarray(masks[start:start + chunk_rows], np.float32)[:, None])
        out[start:start + len(block)] = resize(block, size)[:, 0]
    return out


class _StreamedRows:
    """A map-style dataset: image ``i`` decoded, resized, with row ``i`` of each extra tensor
    (picklable, so DataLoader workers can decode in parallel)."""

    def __init__(self, images: LazyImages, size: int, tensors: tuple[torch.Tensor, ...]):
        self.images, self.size, self.tensors = images, size, tensors

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        image = to_working(self.images[int(i)][None], self.size)[0]
        return (image, *(t[i] for t in self.tensors))


class WorkingImages:
    """Training images at ``size`` px, read by row: ``images[rows]`` is a ``(k, C, size, size)``
    tensor; :meth:`dataset` pairs them with per-row tensors for a DataLoader."""

    def __init__(self, source: Any, size: int, chunk_rows: int = CHUNK_ROWS):
        shape = tuple(int(s) for s in source.shape)
        self.shape: tuple[int, int, int, int] = (shape[0], shape[1], size, size)
        self.size = size
        self.source = source if is_lazy_images(source) else None
        self._tensor = None if self.source is not None else resize_in_chunks(source, size, chunk_rows)

    @property
    def streamed(self) -> bool:
        """Decoded per batch (never held whole)."""
        return self.source is not None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> torch.Tensor:
        if self._tensor is not None:
            return self._tensor[key]
        assert self.source is not None
        rows = np.arange(len(self))[key]
        return to_working(self.source.read(np.atleast_1d(rows)), self.size)

    def dataset(self, *tensors: torch.Tensor) -> Dataset:
        """``(image, *row_of_each_tensor)`` per row: a ``TensorDataset`` in memory, decoded on
        demand when streamed."""
        from torch.utils.data import TensorDataset

        if self._tensor is not None:
            return TensorDataset(self._tensor, *tensors)
        assert self.source is not None
        return _StreamedRows(self.source, self.size, tensors)


def image_dataset(images: torch.Tensor | WorkingImages, *tensors: torch.Tensor) -> Dataset:
    """A dataset of ``images`` (a tensor or :class:`WorkingImages`) with per-row ``tensors``."""
    if isinstance(images, WorkingImages):
        return images.dataset(*tensors)
    from torch.utils.data import TensorDataset

    return TensorDataset(images, *tensors)
