"""Vectorised renderer of chest-radiograph phantoms (numpy only).

:func:`render` turns per-sample parameters (:class:`PhantomParams`, one array entry per image)
into images, exact lung masks and the device layer.  Every operation is element-wise per
sample, so a sample renders to the same pixels whatever batch it is rendered in: the basis of
the oracle counterfactuals in :mod:`.synthetic_cxr`.

Coordinates: ``x`` (columns) and ``y`` (rows, downwards) in ``[-1, 1]``; the patient's left is
the image's right, as in a PA film.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

#: Grey value of the support device (a radio-opaque tube and box): brighter than any anatomy.
DEVICE_VALUE = 0.97
#: Brightest anatomy (before noise) stays below this; :func:`device_pixels` thresholds above it.
DEVICE_THRESHOLD = 0.88
MAX_BLOBS = 3


@dataclass
class PhantomParams:
    """Per-sample rendering parameters; every field is an array of length ``n``."""

    male: np.ndarray  # 0/1
    age: np.ndarray  # years
    disease: np.ndarray  # 0/1, opacities drawn when 1
    device: np.ndarray  # 0/1
    view: np.ndarray  # 0 = PA, 1 = AP
    body_jitter: np.ndarray  # (n,) ~ N(0, 1)
    lung_jitter: np.ndarray  # (n, 4) ~ N(0, 1): width, height, centre x, centre y
    heart_jitter: np.ndarray  # (n, 2) ~ N(0, 1)
    rib_phase: np.ndarray  # U(0, 1)
    rib_freq: np.ndarray  # U(0, 1)
    blobs: np.ndarray  # (n, MAX_BLOBS, 5) U(0, 1): side, radius, angle, sigma, amplitude
    n_blobs: np.ndarray  # (n,) in 1..MAX_BLOBS
    tube: np.ndarray  # (n, 4) U(0, 1): start x, knee y, end x, end y
    box: np.ndarray  # (n, 2) U(0, 1): centre x, centre y
    noise: np.ndarray  # (n, H, W) ~ N(0, 1)

    def take(self, rows: np.ndarray) -> PhantomParams:
        return PhantomParams(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def with_values(self, **values: np.ndarray) -> PhantomParams:
        return replace(self, **values)


@dataclass(frozen=True)
class Style:
    """Global rendering settings (not per sample)."""

    size: int = 64
    disease_strength: float = 0.35
    noise_level: float = 0.02
    #: Underdiagnosis: opacities of patients with ``male == faint_male`` are drawn at
    #: ``faint_factor`` of their contrast (``None``: everyone alike).
    faint_male: int | None = None
    faint_factor: float = 1.0


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0
    return c[None, :, None], c[None, None, :]  # y (1, H, 1), x (1, 1, W)


def _soft(f: np.ndarray, width: float) -> np.ndarray:
    """Inside-ness of an implicit shape ``f <= 1`` with a soft edge of about ``width``."""
    return np.clip(0.5 - (f - 1.0) / (2.0 * width), 0.0, 1.0)


def _col(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)[:, None, None]


def lung_geometry(p: PhantomParams) -> dict[str, np.ndarray]:
    """Lung centre, half-width, half-height and squareness per sample (sex and age dependent)."""
    male = p.male.astype(np.float32)
    age_t = (np.asarray(p.age, dtype=np.float32) - 60.0) / 30.0
    j = p.lung_jitter.astype(np.float32)
    scale = 1.0 + 0.08 * male  # larger lungs in men
    return {
        "cx": 0.37 + 0.03 * male + 0.015 * j[:, 2],
        "cy": -0.06 + 0.02 * j[:, 3] - 0.03 * age_t,
        "a": 0.245 * scale * (1.0 + 0.04 * j[:, 0]),
        "b": 0.52 * scale * (1.0 + 0.08 * age_t + 0.04 * j[:, 1]),  # hyperinflation with age
        "square": 0.15 + 0.4 * male,  # squarer outline in men
    }


def _lungs(p: PhantomParams, yy: np.ndarray, xx: np.ndarray, px: float) -> tuple[np.ndarray, ...]:
    g = {k: _col(v) for k, v in lung_geometry(p).items()}
    soft, hard = [], []
    for side in (-1.0, 1.0):
        t = np.clip((yy - (g["cy"] - g["b"])) / (2.0 * g["b"]), 0.0, 1.0)
        a = g["a"] * (0.55 + 0.45 * np.sqrt(t)) * (0.92 if side > 0 else 1.0)  # narrow apex
        u2 = ((xx - side * g["cx"]) / a) ** 2
        f = u2 + g["square"] * (u2 * u2 - u2) + ((yy - g["cy"]) / g["b"]) ** 2
        medial = side * xx > 0.07  # mediastinum
        hard.append((f <= 1.0) & medial)
        soft.append(_soft(f, 2.0 * px / g["b"]) * medial)  # edge about one pixel wide
    return soft[0] + soft[1], hard[0] | hard[1]


def _heart(p: PhantomParams, yy: np.ndarray, xx: np.ndarray, px: float) -> tuple[np.ndarray, ...]:
    view = _col(p.view)
    j = p.heart_jitter.astype(np.float32)
    hw = _col(0.27 * (1.0 + 0.04 * j[:, 0])) * (1.0 + 0.25 * view)  # magnified on AP films
    hh = _col(0.22 * (1.0 + 0.04 * j[:, 1])) * (1.0 + 0.1 * view)
    f = ((xx - 0.08) / hw) ** 2 + ((yy - 0.3) / hh) ** 2
    return _soft(f, 2.0 * px / np.maximum(hw, hh)), f <= 1.0


def _segment_distance(xx: np.ndarray, yy: np.ndarray, x0: np.ndarray, y0: np.ndarray,
                      x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0)
    ex, ey = xx - (x0 + t * dx), yy - (y0 + t * dy)
    return np.sqrt(ex * ex + ey * ey)


def device_layer(p: PhantomParams, size: int) -> np.ndarray:
    """Coverage in ``[0, 1]`` of the support device (tube plus box), zero where ``device == 0``."""
    out = np.zeros((len(p.device), size, size), dtype=np.float32)
    rows = np.flatnonzero(p.device)
    if len(rows):
        out[rows] = _device_cover(p.tube[rows], p.box[rows], size)
    return out


def _device_cover(tube: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    yy, xx = _grid(size)
    px = 2.0 / size
    tube = tube.astype(np.float32)
    x0, yk = _col(-0.12 + 0.24 * tube[:, 0]), _col(-0.35 + 0.2 * tube[:, 1])
    x1, y1 = _col(-0.45 + 0.3 * tube[:, 2]), _col(0.0 + 0.35 * tube[:, 3])
    top = np.full_like(x0, -1.05)
    dist = np.minimum(_segment_distance(xx, yy, x0, top, x0, yk),
                      _segment_distance(xx, yy, x0, yk, x1, y1))
    half = max(0.8 * px, 0.018)
    cover = np.clip((half - dist) / px + 0.5, 0.0, 1.0)
    box = box.astype(np.float32)
    bx, by = _col(0.35 + 0.25 * box[:, 0]), _col(-0.6 + 0.25 * box[:, 1])
    hx, hy = max(1.6 * px, 0.07), max(1.2 * px, 0.05)
    box_cover = (np.clip((hx - np.abs(xx - bx)) / px + 0.5, 0.0, 1.0)
                 * np.clip((hy - np.abs(yy - by)) / px + 0.5, 0.0, 1.0))
    return np.maximum(cover, box_cover)


def body_region(p: PhantomParams, size: int) -> np.ndarray:
    """Soft body outline (trunk ellipse plus neck) in ``[0, 1]``, shape ``(n, H, W)``."""
    yy, xx = _grid(size)
    px = 2.0 / size
    bw = (0.74 + 0.07 * _col(p.male)) * (1.0 + 0.03 * _col(p.body_jitter))
    trunk = _soft((xx / bw) ** 2 + ((yy - 0.15) / 1.15) ** 2, 2.0 * px)
    neck = _soft(np.maximum(np.abs(xx) / 0.2, (yy + 1.2) / 0.45), 2.0 * px)
    return np.maximum(trunk, neck)


def render(p: PhantomParams, style: Style) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images ``(n, 1, H, W)`` in ``[0, 1]``, lung masks ``(n, H, W)`` uint8, device coverage."""
    size = style.size
    yy, xx = _grid(size)
    px = 2.0 / size
    male = _col(p.male)
    age_t = _col((np.asarray(p.age, dtype=np.float32) - 60.0) / 30.0)

    body = body_region(p, size)
    img = 0.03 + 0.40 * body
    breast = (1.0 - male) * 0.07 * (np.exp(-((np.abs(xx) - 0.42) ** 2 + (yy - 0.42) ** 2) / 0.03))
    img = img + breast * body

    lung_soft, lung_hard = _lungs(p, yy, xx, px)
    img = img * (1.0 - lung_soft) + 0.13 * lung_soft
    heart_soft, heart_hard = _heart(p, yy, xx, px)
    img = img * (1.0 - heart_soft) + 0.58 * heart_soft

    # ribs: curved bright bands, fainter with age (bone density)
    freq = _col(4.5 + 1.0 * p.rib_freq)
    bands = np.sin(np.pi * (freq * (yy + 0.35 * xx * xx) + _col(p.rib_phase)))
    bands *= bands
    bands *= bands
    bands *= bands  # sin^8: thin bright bands
    rib_amp = 0.13 - 0.035 * age_t
    img = img + rib_amp * bands * body * (0.4 + 0.6 * lung_soft)

    # disease: opacities inside the lungs (not over the heart)
    rows = np.flatnonzero(p.disease)
    if len(rows):
        opac = _opacities(p.take(rows), style.disease_strength, yy, xx)
        if style.faint_male is not None:
            fade = np.where(p.male[rows] == style.faint_male, style.faint_factor, 1.0).astype(np.float32)
            opac *= fade[:, None, None]
        img[rows] += opac * (lung_soft[rows] * (1.0 - heart_soft[rows]))

    # AP films: lower contrast, brighter background
    view = _col(p.view)
    img = img * (1.0 - 0.15 * view) + 0.06 * view
    img = img + style.noise_level * p.noise.astype(np.float32)
    dev = device_layer(p, size)
    img = img * (1.0 - dev) + DEVICE_VALUE * dev
    images = np.clip(img, 0.0, 1.0).astype(np.float32)[:, None]
    masks = (lung_hard & ~heart_hard).astype(np.uint8)
    return images, masks, dev


def _opacities(p: PhantomParams, strength: float, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Sum of 1-3 Gaussian opacities placed inside the lung fields, capped at 0.4."""
    g = lung_geometry(p)
    b = p.blobs.astype(np.float32)
    use = np.arange(MAX_BLOBS)[None, :] < p.n_blobs[:, None]
    side = np.where(b[..., 0] < 0.5, -1.0, 1.0)
    r = 0.7 * np.sqrt(b[..., 1])
    ang = 2.0 * np.pi * b[..., 2]
    cx = (side * g["cx"][:, None] + r * np.cos(ang) * g["a"][:, None] * 0.8).astype(np.float32)
    cy = (g["cy"][:, None] + r * np.sin(ang) * g["b"][:, None] * 0.8).astype(np.float32)
    inv = (1.0 / (2.0 * (0.07 + 0.09 * b[..., 3]) ** 2)).astype(np.float32)
    amp = (strength * (0.7 + 0.6 * b[..., 4]) * use).astype(np.float32)
    opac = np.zeros((len(cx), yy.shape[1], xx.shape[2]), dtype=np.float32)
    for k in range(MAX_BLOBS):
        dy2 = (yy - cy[:, k, None, None]) ** 2
        dx2 = (xx - cx[:, k, None, None]) ** 2
        opac += amp[:, k, None, None] * np.exp(-(dx2 + dy2) * inv[:, k, None, None])
    return np.minimum(opac, 0.4)


def device_pixels(images: np.ndarray) -> np.ndarray:
    """Number of device-bright pixels per image (``images``: (n, C, H, W), (n, H, W) or (H, W))."""
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 4:
        arr = arr.mean(axis=1)
    return (arr >= DEVICE_THRESHOLD).reshape(len(arr), -1).sum(axis=1)
