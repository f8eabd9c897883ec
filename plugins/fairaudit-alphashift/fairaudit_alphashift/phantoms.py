"""Tiny procedural chest-radiograph phantoms with an exact counterfactual oracle.

Used by this plugin's tests and throughput benchmark: a small, independent ground truth next
to the core's ``synthetic_cxr`` (device artefact, disease lesion, sex-dependent lungs).
Every sample draws its random layout from its own seeded stream in a fixed order, so
re-rendering a sample with one factor flipped changes only that factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Phantoms:
    images: np.ndarray  # (n, 1, S, S) float32 in [0, 1]
    y: np.ndarray  # disease 0/1
    sex: np.ndarray  # 0 = M, 1 = F
    device: np.ndarray  # support-device artefact 0/1
    seeds: np.ndarray  # per-sample render seed
    size: int

    @property
    def sensitive(self) -> pd.DataFrame:
        return pd.DataFrame({"sex": np.where(self.sex == 1, "F", "M"), "device": self.device})

    def counterfactual(self, factor: str) -> np.ndarray:
        """The same samples with ``factor`` ("device", "disease" or "sex") flipped."""
        y, sex, device = self.y.copy(), self.sex.copy(), self.device.copy()
        if factor == "device":
            device = 1 - device
        elif factor == "disease":
            y = 1 - y
        elif factor == "sex":
            sex = 1 - sex
        else:
            raise ValueError(factor)
        return render(self.seeds, y, sex, device, self.size)


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float,
             rx: float) -> np.ndarray:
    return (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1.0


def render(seeds: np.ndarray, y: np.ndarray, sex: np.ndarray, device: np.ndarray,
           size: int) -> np.ndarray:
    """Render one phantom per row; the factors are 0/1 arrays."""
    out = np.empty((len(seeds), 1, size, size), np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i, s in enumerate(seeds):
        rng = np.random.default_rng(int(s))
        jitter = rng.normal(0.0, 0.015, size=4)
        lesion_side = rng.integers(0, 2)
        lesion_dy, lesion_dx = rng.uniform(-0.1, 0.1, size=2)
        lesion_amp = rng.uniform(0.45, 0.6)
        noise = rng.normal(0.0, 0.03, size=(size, size))
        lung_scale = 1.12 if sex[i] == 0 else 0.92
        img = np.full((size, size), 0.05, np.float32)
        img[_ellipse(yy, xx, 0.55 + jitter[0], 0.5, 0.45, 0.42)] = 0.45
        for cx in (0.32 + jitter[1], 0.68 + jitter[2]):
            img[_ellipse(yy, xx, 0.47, cx, 0.25 * lung_scale, 0.12 * lung_scale)] = 0.15
        img[_ellipse(yy, xx, 0.63 + jitter[3], 0.56, 0.11, 0.12)] = 0.6
        if y[i] == 1:
            cy, cx = 0.45 + lesion_dy, (0.32 if lesion_side == 0 else 0.68) + lesion_dx * 0.5
            img += lesion_amp * np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 0.08**2)))
        if device[i] == 1:
            img[(xx > 0.12) & (xx < 0.19) & (yy > 0.08) & (yy < 0.45)] = 0.95
            img[(xx > 0.08) & (xx < 0.25) & (yy > 0.40) & (yy < 0.50)] = 0.95
        out[i, 0] = np.clip(img + noise, 0.0, 1.0)
    return out


def device_oracle(images: np.ndarray) -> np.ndarray:
    """1 where the device tube is present (mean brightness of its box)."""
    size = images.shape[-1]
    ys = slice(int(0.12 * size), int(0.38 * size))
    xs = slice(int(0.13 * size) + 1, int(0.18 * size) + 1)
    return (images[:, 0, ys, xs].mean(axis=(1, 2)) > 0.75).astype(int)


def make_phantoms(n: int, size: int = 32, *, seed: int = 0, shortcut: bool = True) -> Phantoms:
    """Balanced disease and sex; with ``shortcut`` the device marks disease exactly in the
    F group and is random in M; without it the device is random for everybody."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    sex = rng.integers(0, 2, n)
    device = rng.integers(0, 2, n)
    if shortcut:
        device = np.where(sex == 1, y, device)
    seeds = rng.integers(0, 2**31 - 1, n)
    return Phantoms(render(seeds, y, sex, device, size), y, sex, device, seeds, size)
