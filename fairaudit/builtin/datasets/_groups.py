"""Shared helpers of the synthetic datasets: demographic draws, age bins, group label noise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fairaudit.errors import DataError

#: Age-group bins used by every built-in dataset (years).
AGE_GROUPS: tuple[str, str, str] = ("<50", "50-65", ">65")


def age_group(age: np.ndarray) -> np.ndarray:
    """Bin continuous ages into ``"<50"``, ``"50-65"``, ``">65"`` (object array)."""
    age = np.asarray(age, dtype=float)
    idx = np.digitize(age, [50.0, 65.0 + 1e-9])
    out = np.asarray(AGE_GROUPS, dtype=object)[idx]
    return out


def draw_age(rng: np.random.Generator, n: int, low: float = 30.0, high: float = 90.0) -> np.ndarray:
    """Ages (years): a normal around the range's middle, clipped to ``[low, high]``."""
    mid, spread = (low + high) / 2.0, (high - low) / 4.5
    return np.clip(rng.normal(mid, spread, n), low, high)


def patient_layout(n: int, images_per_patient: int, rng: np.random.Generator) -> np.ndarray:
    """Patient index of each row: ``images_per_patient`` rows per patient, rows shuffled."""
    if images_per_patient < 1:
        raise DataError(f"images_per_patient must be >= 1, got {images_per_patient}")
    n_patients = int(np.ceil(n / images_per_patient))
    pid = np.repeat(np.arange(n_patients), images_per_patient)[:n]
    return pid[rng.permutation(n)]


def flip_rates(
    noise: Mapping[str, float],
    sensitive: pd.DataFrame,
    categories: Mapping[str, Sequence[str]],
    dataset: str,
) -> np.ndarray:
    """Per-row label flip probability from ``{"sex=F": 0.2, "C": 0.1, ...}``.

    A key is ``"attribute=value"`` or a bare value that belongs to exactly one attribute of
    ``categories``.  A row in several noisy groups is flipped with ``1 - prod(1 - rate)``.
    """
    keep = np.ones(len(sensitive))
    for key, rate in noise.items():
        if not 0.0 <= float(rate) <= 0.5:
            raise DataError(f"{dataset}: group_label_noise[{key!r}] = {rate} must lie in [0, 0.5]")
        if "=" in key:
            attr, value = (part.strip() for part in key.split("=", 1))
            owners = [attr] if value in categories.get(attr, ()) else []
        else:
            value = key.strip()
            owners = [a for a, values in categories.items() if value in values]
        if len(owners) != 1:
            known = ", ".join(f"{a}={v}" for a, values in categories.items() for v in values)
            raise DataError(f"{dataset}: group_label_noise key {key!r} names no single group; "
                            f"use one of: {known}")
        hit = (sensitive[owners[0]].astype(str) == value).to_numpy()
        keep[hit] *= 1.0 - float(rate)
    return 1.0 - keep
