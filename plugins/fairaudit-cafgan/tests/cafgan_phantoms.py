"""Tiny procedural chest-radiograph phantoms with exact lung masks, for the CAF-GAN tests.

Used until the built-in ``synthetic_cxr`` dataset is available (and to build deliberately
implausible masks).  Body ellipse, two lung fields whose size depends on sex, a heart,
rib texture, and a disease opacity inside one lung whose contrast is lower in the
minority group ``F`` (so a classifier's TPR is lower there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.data import AuditDataset


def synthetic_cxr_available() -> bool:
    """Whether the built-in ``synthetic_cxr`` dataset exists yet."""
    try:
        from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR  # noqa: F401
    except ImportError:
        return False
    return True


def _ellipse(
    xx: np.ndarray, yy: np.ndarray, cx: np.ndarray, cy: np.ndarray, ax: np.ndarray, ay: np.ndarray
) -> np.ndarray:
    return (
        ((xx - cx[:, None, None]) / ax[:, None, None]) ** 2 + ((yy - cy[:, None, None]) / ay[:, None, None]) ** 2
    ) <= 1.0


def phantom_cxr(
    n: int = 256,
    size: int = 32,
    seed: int = 0,
    female_fraction: float = 0.35,
    prevalence: float = 0.4,
    contrast_m: float = 0.35,
    contrast_f: float = 0.18,
) -> AuditDataset:
    """Phantoms ``(n, 1, size, size)`` in [0, 1], lung masks, disease label, sex group."""
    rng = np.random.default_rng(seed)
    sex = np.where(rng.random(n) < female_fraction, "F", "M")
    y = (rng.random(n) < prevalence).astype(np.int64)
    female = sex == "F"
    lin = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    yy, xx = np.meshgrid(lin, lin, indexing="ij")
    ones = np.ones(n, np.float32)
    body = _ellipse(xx, yy, 0 * ones, 0.05 * ones, 0.85 * ones + rng.normal(0, 0.02, n), 0.95 * ones)
    ax = np.where(female, 0.24, 0.28) + rng.normal(0, 0.015, n)
    ay = np.where(female, 0.46, 0.52) + rng.normal(0, 0.02, n)
    left = _ellipse(xx, yy, -0.4 * ones, -0.05 * ones, ax, ay)
    right = _ellipse(xx, yy, 0.4 * ones, -0.05 * ones, ax, ay)
    heart = _ellipse(xx, yy, 0.12 * ones, 0.35 * ones, 0.28 * ones, 0.22 * ones)
    lungs = (left | right) & ~heart
    img = 0.04 + 0.52 * body + 0.2 * heart * body
    img = np.where(lungs, 0.2, img)
    ribs = 0.05 * np.sin(yy[None] * 22.0 + rng.uniform(0, 6.28, n)[:, None, None])
    img = img + ribs * lungs
    # disease: a gaussian opacity centred in one lung
    side = np.where(rng.random(n) < 0.5, -0.4, 0.4)
    cy = rng.uniform(-0.35, 0.2, n)
    sigma = rng.uniform(0.09, 0.14, n)
    blob = np.exp(
        -(((xx - side[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2) / (2 * sigma[:, None, None] ** 2))
    )
    contrast = np.where(female, contrast_f, contrast_m) * rng.uniform(0.7, 1.3, n)
    img = img + (y * contrast)[:, None, None] * blob * lungs
    img = img + rng.normal(0, 0.03, img.shape)
    images = np.clip(img, 0, 1).astype(np.float32)[:, None]
    sensitive = pd.DataFrame({"sex": sex})
    return AuditDataset(
        name="phantom_cxr",
        y=y,
        sensitive=sensitive,
        patient_ids=np.arange(n),
        images=images,
        masks=lungs.astype(np.float32),
    )


#: Kinds of corruption made by :func:`implausible_masks`, in order.
CORRUPTIONS = ("one lung missing", "shattered", "swollen", "merged")


def implausible_masks(masks: np.ndarray, seed: int = 0) -> np.ndarray:
    """Corrupt masks four ways, cycling through :data:`CORRUPTIONS`: one lung removed,
    shattered into specks, swollen to most of the image, or both fields joined across the
    midline."""
    rng = np.random.default_rng(seed)
    out = np.array(masks, dtype=np.float32, copy=True)
    n, _, w = out.shape
    for i in range(n):
        kind = i % len(CORRUPTIONS)
        if kind == 0:
            out[i, :, : w // 2] = 0.0
        elif kind == 1:
            out[i] *= rng.random(out[i].shape) < 0.35
        elif kind == 2:
            out[i, 2:-2, 2:-2] = 1.0
        else:
            rows = np.flatnonzero(out[i].any(axis=1))
            band = rows[len(rows) // 4 : 3 * len(rows) // 4]
            cols = np.flatnonzero(out[i].any(axis=0))
            out[i, band[:, None], np.arange(cols.min(), cols.max() + 1)[None]] = 1.0
    return out
