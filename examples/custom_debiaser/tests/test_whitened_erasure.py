"""The example plugin passes the conformance kit and erases linear group information."""

import numpy as np
import pandas as pd
from fairaudit_whitened_erasure.debiaser import WhitenedErasure
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from fairaudit import load_plugins
from fairaudit.testing import parametrize_with_checks


@parametrize_with_checks([WhitenedErasure])
def test_conformance(plugin_class, check):
    check(plugin_class)


def test_found_through_its_entry_point():
    assert load_plugins().debiasers.get("whitened_erasure") is WhitenedErasure


def test_linear_probe_drops_to_chance_while_task_survives():
    rng = np.random.default_rng(0)
    n, d = 3000, 20
    sex = rng.integers(0, 2, n)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, d))
    X[:, 0] += 2.0 * sex + 0.5 * X[:, 2]
    X[:, 1] += 1.5 * y
    sf = pd.DataFrame({"sex": np.where(sex == 1, "F", "M")})
    Z = WhitenedErasure().fit(X, y, sensitive_features=sf).transform(X)

    def cv_auc(features, target):
        scores = cross_val_predict(LogisticRegression(max_iter=500), features, target, cv=5,
                                   method="predict_proba")[:, 1]
        return roc_auc_score(target, scores)

    assert cv_auc(X, sex) > 0.9
    assert cv_auc(Z, sex) < 0.55
    assert cv_auc(Z, y) > cv_auc(X, y) - 0.02
