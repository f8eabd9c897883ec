"""Latent bias directions and alpha shifts (numpy only; used on latents and on embeddings).

For a binary attribute the paper's shift is ``z* = z + alpha (zbar_1 - zbar_0)``, with
``zbar_g`` the mean latent of group ``g``.  When the attribute is correlated with the label
(a shortcut), the marginal difference also carries the label's own direction, so randomising
along it would erase task signal.  ``mode="conditional"`` therefore averages the group
difference *within* label strata (weights ``n_g n_0 / (n_g + n_0)``, the inverse variance of a
difference of means); ``mode="marginal"`` is the plain formula.  Attributes with more than two
levels get one direction per non-reference level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from fairaudit import DataError

DirectionMode = Literal["conditional", "marginal"]


@dataclass
class BiasDirection:
    """Directions of one attribute: ``vectors[i]`` points from ``reference`` to ``levels[i]``."""

    attribute: str
    reference: str
    levels: list[str]
    vectors: np.ndarray
    group_means: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    mode: str = "conditional"

    @property
    def main(self) -> np.ndarray:
        """The first (for binary attributes: the only) direction."""
        return self.vectors[0]


def level_labels(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """String label per row (``""`` = missing) and the sorted levels (numeric order if numeric)."""
    values = column.to_numpy(dtype=object)
    present = pd.notna(column).to_numpy()
    uniques = pd.unique(column[present])
    try:
        ordered = sorted(uniques, key=float)
    except (TypeError, ValueError):
        ordered = sorted(uniques, key=str)
    levels = [_key(v) for v in ordered]
    labels = np.array([_key(v) if ok else "" for v, ok in zip(values, present, strict=True)],
                      dtype=object)
    return labels, levels


def _key(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def compute_direction(Z: np.ndarray, column: pd.Series, y: np.ndarray | None, *,
                      attribute: str, mode: DirectionMode = "conditional") -> BiasDirection:
    """Group mean latents of ``column`` and the direction(s) from its reference level."""
    Z = np.asarray(Z, dtype=np.float64)
    labels, levels = level_labels(column)
    if len(levels) < 2:
        raise DataError(f"bias attribute {attribute!r} needs at least two groups in the training "
                        f"data; found {levels or 'none'}")
    means = {lv: Z[labels == lv].mean(axis=0) for lv in levels}
    counts = {lv: int(np.sum(labels == lv)) for lv in levels}
    ref, others = levels[0], levels[1:]
    used = mode
    vectors = []
    for lv in others:
        vec = None
        if mode == "conditional" and y is not None:
            vec = _conditional_difference(Z, labels, np.asarray(y), lv, ref)
            if vec is None:
                used = "marginal (no label stratum holds both groups)"
        if vec is None:
            vec = means[lv] - means[ref]
        vectors.append(vec)
    return BiasDirection(attribute, ref, others, np.stack(vectors).astype(np.float32),
                         {k: v.astype(np.float32) for k, v in means.items()}, counts, used)


def _conditional_difference(Z: np.ndarray, labels: np.ndarray, y: np.ndarray, level: str,
                            ref: str) -> np.ndarray | None:
    total, weight = np.zeros(Z.shape[1]), 0.0
    for value in np.unique(y):
        a = (labels == level) & (y == value)
        b = (labels == ref) & (y == value)
        na, nb = int(a.sum()), int(b.sum())
        if na == 0 or nb == 0:
            continue
        w = na * nb / (na + nb)
        total += w * (Z[a].mean(axis=0) - Z[b].mean(axis=0))
        weight += w
    return total / weight if weight > 0 else None


def stacked_vectors(directions: list[BiasDirection]) -> np.ndarray:
    """All direction vectors, ``(k, d)``."""
    return np.concatenate([d.vectors for d in directions], axis=0)


def alpha_shift(Z: np.ndarray, vector: np.ndarray, alphas: np.ndarray | float) -> np.ndarray:
    """``z + alpha * v`` row by row (``alphas`` scalar or ``(n,)``)."""
    a = np.asarray(alphas, dtype=np.float32)
    a = a[:, None] if a.ndim == 1 else a
    shifted = np.asarray(Z, np.float32) + a * np.asarray(vector, np.float32)[None, :]
    return shifted.astype(np.float32)


def randomised_shifts(Z: np.ndarray, y: np.ndarray, sensitive: pd.DataFrame,
                      directions: list[BiasDirection], *, n_augment: int, alpha_max: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The rows of ``Z`` followed by ``n_augment`` copies shifted by ``sum_k alpha_k v_k`` with
    independent ``alpha_k ~ U(-alpha_max, alpha_max)``; labels and groups repeated alike."""
    Z = np.asarray(Z, np.float32)
    V = stacked_vectors(directions) if directions else np.zeros((0, Z.shape[1]), np.float32)
    blocks = [Z]
    for _ in range(n_augment):
        alphas = rng.uniform(-alpha_max, alpha_max, size=(len(Z), len(V))).astype(np.float32)
        blocks.append(Z + alphas @ V)
    reps = n_augment + 1
    y_out = np.tile(np.asarray(y), reps)
    s_out = pd.concat([sensitive.reset_index(drop=True)] * reps, ignore_index=True)
    return np.concatenate(blocks, axis=0), y_out, s_out
