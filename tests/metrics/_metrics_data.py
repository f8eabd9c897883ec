"""Small seeded data for the metric and statistics tests (imported by the test modules)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.base import MetricContext, StatsConfig


def binary_case(
    seed: int = 0,
    n: int = 900,
    groups: tuple[str, ...] = ("A", "B", "C"),
    tpr: tuple[float, ...] = (0.8, 0.7, 0.6),
    fpr: tuple[float, ...] = (0.2, 0.25, 0.3),
    prevalence: float = 0.4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels, scores, 0.5-threshold predictions and group labels with known group TPR/FPR."""
    rng = np.random.default_rng(seed)
    g = rng.choice(np.array(groups, dtype=object), n)
    y = (rng.random(n) < prevalence).astype(int)
    gi = np.array([groups.index(x) for x in g])
    p_pos = np.where(y == 1, np.array(tpr)[gi], np.array(fpr)[gi])
    pred = (rng.random(n) < p_pos).astype(int)
    score = np.clip(np.where(pred == 1, 0.5 + 0.5 * rng.random(n), 0.5 * rng.random(n)), 0, 0.999)
    return y, score, pred, g


def context(
    y: np.ndarray,
    score: np.ndarray,
    sensitive: pd.DataFrame,
    *,
    attributes: list[str],
    n_boot: int = 200,
    n_permutations: int = 200,
    **kw: object,
) -> MetricContext:
    stats = kw.pop("stats", None) or StatsConfig(
        n_boot=n_boot, n_permutations=n_permutations, min_group_size=10, min_group_positives=5
    )
    return MetricContext(
        y_true=y,
        sensitive=sensitive,
        patient_ids=kw.pop("patient_ids", np.arange(len(y))),
        y_score=score,
        attributes=attributes,
        stats=stats,
        **kw,
    )  # type: ignore[arg-type]
