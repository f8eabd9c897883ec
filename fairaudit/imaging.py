"""Small image utilities shared by plugins and reports: grids of images saved as PNG."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fairaudit.atomic import write_bytes


def to_uint8(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` float in [0, 1] (or signed differences in [-1, 1]) -> uint8 HxW(x3)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else np.transpose(img[:3], (1, 2, 0))
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def difference_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A signed difference ``b - a`` mapped to [0, 1] (0.5 = no change), grayscale."""
    diff = np.asarray(b, dtype=np.float32) - np.asarray(a, dtype=np.float32)
    if diff.ndim == 3:
        diff = diff.mean(axis=0)
    return np.clip(0.5 + diff, 0.0, 1.0)


def grid_png(
    rows: Sequence[Sequence[np.ndarray]],
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    cell: int = 96,
    pad: int = 4,
) -> bytes:
    """Render a grid of images (each ``(C,H,W)`` or ``(H,W)`` in [0,1]) with optional labels."""
    from PIL import Image, ImageDraw

    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=0)
    left = 90 if row_labels else 0
    top = 18 if col_labels else 0
    width = left + n_cols * (cell + pad) + pad
    height = top + n_rows * (cell + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(col_labels or []):
        draw.text((left + pad + c * (cell + pad), 3), str(label)[:16], fill="black")
    for r, row in enumerate(rows):
        y0 = top + pad + r * (cell + pad)
        if row_labels:
            draw.text((3, y0 + cell // 2 - 6), str(row_labels[r])[:14], fill="black")
        for c, image in enumerate(row):
            tile = Image.fromarray(to_uint8(image)).convert("RGB").resize((cell, cell), Image.NEAREST)
            canvas.paste(tile, (left + pad + c * (cell + pad), y0))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_grid(path: str | Path, rows: Sequence[Sequence[np.ndarray]], **kwargs: object) -> Path:
    """Write :func:`grid_png` to ``path`` atomically."""
    return write_bytes(path, grid_png(rows, **kwargs))  # type: ignore[arg-type]
