"""Iterative nullspace projection (INLP; Ravfogel et al., ACL 2020).

Repeatedly train a linear classifier for each sensitive attribute on the current projected
features and project its weight directions out, until a classifier trained on the projected
training rows no longer beats the majority class on held-out training rows (or
``n_iterations`` is reached).  The output keeps the component of the features in the
intersection of the classifiers' nullspaces (plus the training mean).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

from fairaudit.builtin.debiasers.erasure import _LinearEraser


class INLP(_LinearEraser):
    """INLP with logistic-regression classifiers; stops when held-out accuracy is at chance."""

    name = "inlp"
    description = ("INLP: iterative nullspace projection of linear classifiers of the sensitive groups "
                   "(Ravfogel et al., 2020).")

    def __init__(self, *, attributes: list[str] | None = None, n_iterations: int = 20, C: float = 1.0,
                 tolerance: float = 0.01, val_fraction: float = 0.3, random_state: int = 0):
        self.attributes = attributes
        self.n_iterations = n_iterations
        self.C = C
        self.tolerance = tolerance
        self.val_fraction = val_fraction
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, *, sensitive_features: pd.DataFrame) -> Self:
        from sklearn.linear_model import LogisticRegression

        Xc, _ = self._prepare(X, y, sensitive_features)  # checks, attribute columns, centring
        rng = np.random.default_rng(self.random_state)
        val = rng.random(len(Xc)) < self.val_fraction
        targets = [sensitive_features[c].astype(str).to_numpy() for c in self.columns_]
        directions = np.zeros((0, Xc.shape[1]))
        self.history_: list[dict[str, Any]] = []
        for it in range(self.n_iterations):
            Xp = Xc - Xc @ (directions.T @ directions) if len(directions) else Xc
            new, above = [], False
            for col, t in zip(self.columns_, targets, strict=True):
                if len(np.unique(t[~val])) < 2:
                    continue
                clf = LogisticRegression(C=self.C, max_iter=500).fit(Xp[~val], t[~val])
                acc = float((clf.predict(Xp[val]) == t[val]).mean()) if val.any() else 1.0
                majority = float(pd.Series(t[val]).value_counts(normalize=True).max()) if val.any() else 0.0
                self.history_.append({"iteration": it, "attribute": col, "val_accuracy": acc,
                                      "majority": majority})
                if acc > majority + self.tolerance:
                    above = True
                    new.append(clf.coef_)
            if not above:
                break
            stacked = np.vstack([directions, *new])
            _, s, vt = np.linalg.svd(stacked, full_matrices=False)
            directions = vt[s > 1e-10 * s.max()]
        self.n_iterations_ = len({h["iteration"] for h in self.history_})
        self.rank_ = len(directions)
        self.projection_ = directions.T @ directions
        return self

    def report_blocks(self) -> list[dict[str, Any]]:
        rows = [[h["iteration"], h["attribute"], round(h["val_accuracy"], 4), round(h["majority"], 4)]
                for h in getattr(self, "history_", [])]
        return [{"kind": "table", "title": "INLP iterations",
                 "columns": ["iteration", "attribute", "held-out accuracy", "majority class"], "rows": rows,
                 "caption": f"{getattr(self, 'rank_', 0)} direction(s) projected out; the last row of "
                            "each attribute is the classifier that no longer beat the majority class."}]

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{"n_iterations": 5}, {"n_iterations": 3, "attributes": ["sex"], "C": 0.1}]
