"""Logistic regression on features (scikit-learn), standardised inputs."""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from fairaudit.base import BaseModel


class LogisticModel(BaseModel):
    """L2-regularised logistic regression on standardised features."""

    name = "logistic"
    description = "Logistic regression (scikit-learn) on standardised features."

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, class_weight: str | None = None):
        self.C = C
        self.max_iter = max_iter
        self.class_weight = class_weight

    def fit(self, X: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None) -> Self:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.pipeline_ = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight=self.class_weight),
        )
        self.pipeline_.fit(_flat(X), y, logisticregression__sample_weight=sample_weight)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline_.predict_proba(_flat(X))[:, 1]

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"C": 0.1}]


def _flat(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X.reshape(len(X), -1)
