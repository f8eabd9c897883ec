"""Fixtures of the dataset tests: a cross-validated logistic probe (the yardstick)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def _probe_auc(X: np.ndarray, target: np.ndarray, C: float = 0.05, folds: int = 3) -> float:
    """Out-of-fold ROC AUC of a standardised logistic regression predicting ``target``."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    target = np.asarray(target).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    scores = cross_val_predict(model, X, target, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(target, scores))


@pytest.fixture
def probe_auc() -> Callable[..., float]:
    return _probe_auc
