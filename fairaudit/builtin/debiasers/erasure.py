"""Closed-form linear erasure: LEACE and the mean-difference projection.

Both make every group's mean of the output equal, which is exactly the condition under which
no linear classifier can predict the group better than a constant (Belrose et al., "LEACE:
Perfect linear concept erasure in closed form", NeurIPS 2023, Theorem 3.1).  LEACE does it
with the least mean squared change of the features (an oblique projection in whitened
coordinates); the mean projection projects orthogonally, changing the features more.
Neither removes information carried by anything other than group means (variances,
interactions): a non-linear probe may still recover the attribute.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

from fairaudit.base import BaseDebiaser
from fairaudit.builtin.debiasers._common import attribute_columns, check_inputs, one_hot


class _LinearEraser(BaseDebiaser):
    """``x -> x - P (x - mean)`` with a fitted ``projection_`` (``d x d``, acts on centred rows)."""

    def transform(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "projection_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")
        X = np.asarray(X, dtype=np.float64)
        return (X - (X - self.mean_) @ self.projection_.T).astype(np.float32)

    def report_blocks(self) -> list[dict[str, Any]]:
        return [{"kind": "text", "title": self.description.split(":")[0],
                 "text": f"Erased a rank-{getattr(self, 'rank_', 0)} subspace spanning the group mean "
                         f"differences of {getattr(self, 'columns_', [])}: the group means of the output "
                         "are equal on the training rows, so no linear probe beats chance there."}]

    def _prepare(self, X: np.ndarray, y: np.ndarray, sensitive_features: pd.DataFrame
                 ) -> tuple[np.ndarray, np.ndarray]:
        check_inputs(self.name, X, y, sensitive_features)
        self.columns_ = attribute_columns(self.name, self.attributes, sensitive_features)
        Z = one_hot(sensitive_features, self.columns_)
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        self.mean_ = X.mean(axis=0)
        return X - self.mean_, Z - Z.mean(axis=0)


class LeaceEraser(_LinearEraser):
    """LEACE (Belrose et al., 2023): ``P = W⁺ P_{W Σ_xz} W`` with ``W = Σ_xx^{-1/2}``."""

    name = "leace"
    description = ("LEACE: closed-form least-squares linear concept erasure of the sensitive groups "
                   "(Belrose et al., 2023); removes all linearly decodable group information.")

    def __init__(self, *, attributes: list[str] | None = None, ridge: float = 0.0, tolerance: float = 1e-8):
        self.attributes = attributes
        self.ridge = ridge
        self.tolerance = tolerance

    def fit(self, X: np.ndarray, y: np.ndarray, *, sensitive_features: pd.DataFrame) -> Self:
        Xc, Zc = self._prepare(X, y, sensitive_features)
        n, d = Xc.shape
        cov = Xc.T @ Xc / n
        if self.ridge:
            cov = cov + self.ridge * np.trace(cov) / d * np.eye(d)
        eigval, eigvec = np.linalg.eigh(cov)
        keep = eigval > self.tolerance * max(float(eigval.max()), 1e-300)
        V, lam = eigvec[:, keep], eigval[keep]
        whiten = (V / np.sqrt(lam)) @ V.T          # Σ^{+1/2}
        unwhiten = (V * np.sqrt(lam)) @ V.T        # Σ^{1/2}
        cross = whiten @ (Xc.T @ Zc / n)           # W Σ_xz
        u, s, _ = np.linalg.svd(cross, full_matrices=False)
        u = u[:, s > self.tolerance * max(float(s.max(initial=0.0)), 1e-300)]
        self.rank_ = int(u.shape[1])
        self.projection_ = unwhiten @ (u @ u.T) @ whiten
        return self

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"ridge": 0.1, "attributes": ["sex"]}]


class MeanProjection(_LinearEraser):
    """Orthogonal projection onto the complement of the groups' mean-difference directions."""

    name = "mean_projection"
    description = ("Mean-difference projection: removes the directions between the sensitive groups' "
                   "means (orthogonal projection).")

    def __init__(self, *, attributes: list[str] | None = None, tolerance: float = 1e-8):
        self.attributes = attributes
        self.tolerance = tolerance

    def fit(self, X: np.ndarray, y: np.ndarray, *, sensitive_features: pd.DataFrame) -> Self:
        Xc, Zc = self._prepare(X, y, sensitive_features)
        cross = Xc.T @ Zc / len(Xc)                 # columns: group-mean differences (scaled)
        u, s, _ = np.linalg.svd(cross, full_matrices=False)
        u = u[:, s > self.tolerance * max(float(s.max(initial=0.0)), 1e-300)]
        self.rank_ = int(u.shape[1])
        self.projection_ = u @ u.T
        return self

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"attributes": ["sex"]}]
