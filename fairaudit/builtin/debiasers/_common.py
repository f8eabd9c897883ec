"""Shared input checks of the built-in debiasers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.errors import DataError


def check_inputs(name: str, X: np.ndarray, y: np.ndarray, sensitive_features: pd.DataFrame) -> None:
    """Equal lengths of ``X``, ``y`` and ``sensitive_features``; a clear error otherwise."""
    if not (len(X) == len(y) == len(sensitive_features)):
        raise DataError(f"{name}: X ({len(X)} rows), y ({len(y)}) and sensitive_features "
                        f"({len(sensitive_features)}) differ in length")


def attribute_columns(name: str, attributes: list[str] | None, sensitive_features: pd.DataFrame) -> list[str]:
    """The columns to act on (``None``: every column); an unknown column is an error naming it."""
    columns = list(attributes) if attributes else list(sensitive_features.columns)
    missing = [c for c in columns if c not in sensitive_features.columns]
    if missing:
        raise DataError(f"{name}: attributes {missing} are not columns of the sensitive table "
                        f"(it has {list(sensitive_features.columns)})")
    if not columns:
        raise DataError(f"{name}: no sensitive attribute to act on")
    return columns


def one_hot(sensitive_features: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One-hot indicators of every group of ``columns`` (float64, ``n x groups``)."""
    return pd.get_dummies(sensitive_features[columns].astype(str)).to_numpy(dtype=np.float64)


def joint_groups(sensitive_features: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One label per row for the intersection of ``columns`` (``"F|<50"``)."""
    return sensitive_features[columns].astype(str).agg("|".join, axis=1)
