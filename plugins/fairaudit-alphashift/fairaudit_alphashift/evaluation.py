"""Head retraining and shortcut-reliance measures used by the tests and benchmarks.

The paper's mitigation retrains only the classification head: here a logistic regression on
``transform`` output (baseline) versus on ``transform_train`` output (randomised alpha
shifts).  Reliance on a shortcut is measured with counterfactual pairs: the mean absolute
change of the predicted probability, and how often the decision flips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fairaudit_alphashift.debiaser import AlphaShiftDebiaser


@dataclass
class Heads:
    baseline: LogisticRegression
    mitigated: LogisticRegression


def fit_heads(deb: AlphaShiftDebiaser, X: np.ndarray, y: np.ndarray, sensitive: pd.DataFrame, *,
              C: float = 1.0, max_iter: int = 5000) -> Heads:
    """Logistic heads on the plain and on the alpha-shift-augmented training representation."""
    Z = deb.transform(X)
    Za, ya, _ = deb.transform_train(X, y, sensitive_features=sensitive)
    base = LogisticRegression(C=C, max_iter=max_iter).fit(Z, y)
    mitigated = LogisticRegression(C=C, max_iter=max_iter).fit(Za, ya)
    return Heads(base, mitigated)


def reliance(scores: np.ndarray, cf_scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Mean |p(x) - p(cf(x))| and decision flip rate over counterfactual pairs."""
    scores, cf_scores = np.asarray(scores, float), np.asarray(cf_scores, float)
    return {"mean_abs_change": float(np.mean(np.abs(scores - cf_scores))),
            "flip_rate": float(np.mean((scores >= threshold) != (cf_scores >= threshold)))}


def auc(y: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(y, scores))


def score(head: LogisticRegression, Z: np.ndarray) -> np.ndarray:
    return head.predict_proba(Z)[:, 1]
