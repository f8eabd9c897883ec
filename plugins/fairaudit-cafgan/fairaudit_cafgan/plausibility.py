"""Hard (non-differentiable) lung-mask plausibility statistics, for evaluation and reports.

A mask is *implausible* when its lung area is outside the reference range, its two sides
are too unequal, or it does not consist of exactly two lung fields.  Ranges come from
real masks (:func:`plausibility_reference`) or fall back to broad anatomical defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Fallback bounds when no reference masks are given.
DEFAULT_BOUNDS: dict[str, float] = {"area_low": 0.05, "area_high": 0.6, "min_balance": 0.4}


def _as_binary(masks: np.ndarray) -> np.ndarray:
    m = np.asarray(masks, dtype=np.float32)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim != 3:
        raise ValueError(f"masks must have shape (n, H, W), got {m.shape}")
    return m >= 0.5


def _min_component_size(shape: tuple[int, ...]) -> int:
    return max(2, round(0.001 * shape[-1] * shape[-2]))


def mask_measurements(masks: np.ndarray) -> dict[str, np.ndarray]:
    """Area fraction, left/right balance (smaller half over larger half, 1 = equal) and the
    number of connected components (4-connectivity; specks under 0.1% of the image, or 2
    pixels, are ignored) of each mask."""
    from scipy import ndimage

    binary = _as_binary(masks)
    n, _, w = binary.shape
    area = binary.reshape(n, -1).mean(axis=1)
    left = binary[:, :, : w // 2].reshape(n, -1).sum(axis=1).astype(np.float64)
    right = binary[:, :, w - w // 2 :].reshape(n, -1).sum(axis=1).astype(np.float64)
    larger = np.maximum(left, right)
    balance = np.divide(np.minimum(left, right), larger, out=np.zeros(n), where=larger > 0)
    min_size = _min_component_size(binary.shape)
    components = np.zeros(n, dtype=np.int64)
    for i in range(n):
        labels, count = ndimage.label(binary[i])
        if count:
            sizes = np.bincount(labels.ravel())[1:]
            components[i] = int((sizes >= min_size).sum())
    return {"area_fraction": area, "balance": balance, "n_components": components}


def plausibility_reference(masks: np.ndarray, margin: float = 0.2) -> dict[str, float]:
    """Bounds from real masks: the 1st-99th percentile of area widened by ``margin``
    (relative), and ``(1 - margin)`` times the 1st percentile of balance."""
    return measurement_bounds(mask_measurements(masks), margin)


def measurement_bounds(meas: dict[str, np.ndarray], margin: float = 0.2) -> dict[str, float]:
    """:func:`plausibility_reference` from :func:`mask_measurements` already taken."""
    area_lo, area_hi = np.percentile(meas["area_fraction"], [1, 99])
    return {
        "area_low": float(area_lo * (1 - margin)),
        "area_high": float(min(1.0, area_hi * (1 + margin))),
        "min_balance": float(np.percentile(meas["balance"], 1) * (1 - margin)),
    }


def lung_plausibility(masks: np.ndarray, reference: dict[str, float] | None = None) -> dict[str, Any]:
    """Plausibility of lung masks.

    Parameters
    ----------
    masks:
        Binary masks or probabilities ``(n, H, W)`` (thresholded at 0.5).
    reference:
        Bounds from :func:`plausibility_reference` (default :data:`DEFAULT_BOUNDS`).

    Returns
    -------
    dict
        ``area_fraction``, ``balance``, ``n_components`` and ``implausible`` (arrays, one
        per mask), ``rate`` (fraction implausible), ``reasons`` (counts of masks failing
        each rule) and the ``bounds`` used.
    """
    return judge_measurements(mask_measurements(masks), reference)


def judge_measurements(meas: dict[str, np.ndarray], reference: dict[str, float] | None = None) -> dict[str, Any]:
    """:func:`lung_plausibility` from :func:`mask_measurements` already taken."""
    bounds = dict(reference or DEFAULT_BOUNDS)
    bad_area = (meas["area_fraction"] < bounds["area_low"]) | (meas["area_fraction"] > bounds["area_high"])
    bad_balance = meas["balance"] < bounds["min_balance"]
    bad_components = meas["n_components"] != 2
    implausible = bad_area | bad_balance | bad_components
    return {
        **meas,
        "implausible": implausible,
        "rate": float(implausible.mean()) if len(implausible) else 0.0,
        "reasons": {
            "area": int(bad_area.sum()),
            "balance": int(bad_balance.sum()),
            "components": int(bad_components.sum()),
        },
        "bounds": bounds,
    }


def concat_measurements(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One :func:`mask_measurements` record from records of consecutive blocks of masks."""
    keys = ("area_fraction", "balance", "n_components")
    if not parts:
        return {"area_fraction": np.zeros(0), "balance": np.zeros(0), "n_components": np.zeros(0, np.int64)}
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def summarise(result: dict[str, Any]) -> dict[str, float]:
    """A table row from :func:`lung_plausibility`'s output."""
    n = len(result["implausible"])
    return {
        "n": float(n),
        "implausible_rate": result["rate"],
        "area_mean": float(np.mean(result["area_fraction"])) if n else float("nan"),
        "area_std": float(np.std(result["area_fraction"])) if n else float("nan"),
        "balance_mean": float(np.mean(result["balance"])) if n else float("nan"),
        "two_components_rate": float(np.mean(result["n_components"] == 2)) if n else float("nan"),
        **{f"{k}_fail_rate": v / n if n else float("nan") for k, v in result["reasons"].items()},
    }
