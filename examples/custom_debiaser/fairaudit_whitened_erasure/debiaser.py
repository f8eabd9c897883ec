"""Whitened linear erasure: no linear probe can recover the groups from the output.

In whitened coordinates, the cross-covariance between the features and the one-hot group
indicators spans the only directions a linear probe can use; projecting them out (and
mapping back) removes all linear group information with the least change in the
whitened metric (the idea behind LEACE, Belrose et al., 2023).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

from fairaudit import BaseDebiaser, DataError


class WhitenedErasure(BaseDebiaser):
    """Remove the linearly decodable information about ``attributes`` from features."""

    name = "whitened_erasure"
    description = "Whitened linear erasure of group information (LEACE-style), a user plugin example."
    modalities = frozenset({"features"})

    def __init__(self, *, attributes: list[str] | None = None, ridge: float = 1e-3):
        self.attributes = attributes
        self.ridge = ridge

    def fit(self, X: np.ndarray, y: np.ndarray, *, sensitive_features: pd.DataFrame) -> Self:
        X = np.asarray(X, dtype=np.float64)
        if not (len(X) == len(y) == len(sensitive_features)):
            raise DataError(f"X ({len(X)}), y ({len(y)}) and sensitive_features "
                            f"({len(sensitive_features)}) differ in length")
        columns = self.attributes or list(sensitive_features.columns)
        onehot = pd.get_dummies(sensitive_features[columns].astype(str)).to_numpy(dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        centred = X - self.mean_
        cov = centred.T @ centred / len(X)
        eigval, eigvec = np.linalg.eigh(cov + self.ridge * np.trace(cov) / len(cov) * np.eye(len(cov)))
        whiten = eigvec @ np.diag(eigval ** -0.5) @ eigvec.T
        unwhiten = eigvec @ np.diag(eigval ** 0.5) @ eigvec.T
        cross = whiten @ centred.T @ (onehot - onehot.mean(axis=0)) / len(X)
        basis, singular, _ = np.linalg.svd(cross, full_matrices=False)
        basis = basis[:, singular > 1e-10 * max(float(singular.max()), 1e-300)]
        self.projection_ = unwhiten @ (np.eye(len(cov)) - basis @ basis.T) @ whiten
        self.n_erased_ = int(basis.shape[1])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "projection_"):
            raise RuntimeError("WhitenedErasure is not fitted; call fit first")
        centred = np.asarray(X, dtype=np.float64) - self.mean_
        return (centred @ self.projection_.T + self.mean_).astype(np.float32)

    def report_blocks(self) -> list[dict[str, Any]]:
        return [{"kind": "text", "title": "Whitened erasure",
                 "text": f"Erased {getattr(self, 'n_erased_', 0)} whitened direction(s) spanning the "
                         "feature-group cross-covariance."}]

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"ridge": 0.1}]
