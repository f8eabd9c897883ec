"""Images decoded on demand: a dataset of radiographs that does not fit in memory.

:class:`LazyImages` behaves like a read-only ``(n, C, H, W)`` float32 array whose rows are
decoded by a picklable *reader* when they are indexed, so a subset is just a list of row
numbers and a torch ``DataLoader`` with worker processes can decode batches in parallel.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np


class ImageReader(Protocol):
    """Decodes image ``i`` of a source into a ``(C, H, W)`` float32 array; picklable."""

    shape: tuple[int, int, int]

    def __call__(self, i: int) -> np.ndarray: ...

    def fingerprint(self, i: int) -> bytes:
        """Bytes that change when image ``i`` changes (for the run's data hash)."""
        ...


class LazyImages:
    """Rows ``rows`` of an image source, decoded when indexed."""

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, reader: ImageReader, rows: np.ndarray):
        self.reader = reader
        self.rows = np.asarray(rows, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.rows), *self.reader.shape)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"LazyImages(shape={self.shape})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self.read(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, int | np.integer):
            return self.reader(int(self.rows[key]))
        return self.read(np.arange(len(self))[key])

    def take(self, positions: np.ndarray) -> LazyImages:
        """A lazy subset (positions into this view)."""
        return LazyImages(self.reader, self.rows[np.asarray(positions)])

    def read(self, positions: np.ndarray) -> np.ndarray:
        """Decode ``positions`` into one in-memory array."""
        positions = np.asarray(positions).reshape(-1)
        out = np.empty((len(positions), *self.reader.shape), dtype=np.float32)
        for k, p in enumerate(positions):
            out[k] = self.reader(int(self.rows[p]))
        return out

    def iter_chunks(self, chunk_rows: int = 256) -> Iterator[np.ndarray]:
        """Decoded blocks of ``chunk_rows`` images, in order."""
        for start in range(0, len(self), chunk_rows):
            yield self.read(np.arange(start, min(start + chunk_rows, len(self))))

    def update_hash(self, h: Any) -> None:
        """Feed the source fingerprints of these rows (no decoding) to hashlib object ``h``."""
        for row in self.rows:
            h.update(self.reader.fingerprint(int(row)))


def is_lazy_images(X: Any) -> bool:
    return isinstance(X, LazyImages)


def iter_image_chunks(images: Any, chunk_rows: int = 256) -> Iterator[np.ndarray]:
    """Blocks of an image array or :class:`LazyImages`, as float32 arrays."""
    if isinstance(images, LazyImages):
        yield from images.iter_chunks(chunk_rows)
        return
    for start in range(0, len(images), chunk_rows):
        yield np.asarray(images[start:start + chunk_rows], dtype=np.float32)
