"""A fairaudit model as a scikit-learn classifier (imported only when a fairlearn arm runs)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from fairaudit.base import BaseModel


class SklearnClassifier(ClassifierMixin, BaseEstimator):
    """A fairaudit :class:`~fairaudit.base.BaseModel` as a scikit-learn binary classifier (what
    fairlearn's meta-estimators call).  ``fit`` fits a copy of ``model`` (keeping its run context)."""

    def __init__(self, model: BaseModel | None = None):
        self.model = model

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SklearnClassifier:
        if self.model is None:
            raise ValueError("SklearnClassifier needs a model")
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.model_ = copy.deepcopy(self.model).fit(np.asarray(X, dtype=np.float32), np.asarray(y).astype(np.int64),
                                                    sample_weight=w)
        self.classes_ = np.array([0, 1])
        return self

    @classmethod
    def prefit(cls, model: BaseModel) -> SklearnClassifier:
        """Wrap an already fitted model."""
        out = cls(model)
        out.model_, out.classes_ = model, np.array([0, 1])
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        p = np.asarray(self.model_.predict_proba(np.asarray(X, dtype=np.float32)), dtype=np.float64).reshape(-1)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)
