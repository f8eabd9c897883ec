"""fairlearn's mitigations as fairaudit arms, around the spec's downstream model.

- ``exponentiated_gradient`` (in-processing): :class:`fairlearn.reductions.ExponentiatedGradient`
  (Agarwal et al., ICML 2018) trains copies of the downstream model on reweighted data and
  returns a randomised mixture that satisfies the constraint up to ``eps``; the arm's score is
  the mixture's probability of a positive decision.
- ``threshold_optimizer`` (post-processing): :class:`fairlearn.postprocessing.ThresholdOptimizer`
  (Hardt et al., NeurIPS 2016) picks group-specific (randomised) thresholds on the **fitted
  baseline model**'s scores; the arm's scores are its 0/1 decisions (seeded), so the group metrics
  at threshold 0.5 are exactly its decisions and its AUC is that of a hard classifier.
"""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from fairaudit.base import BaseInProcessor, BaseModel, BasePostProcessor
from fairaudit.builtin.debiasers._common import attribute_columns, check_inputs

ReductionConstraint = Literal["equalized_odds", "demographic_parity", "true_positive_rate_parity",
                              "false_positive_rate_parity", "error_rate_parity"]
ThresholdConstraint = Literal["equalized_odds", "demographic_parity", "true_positive_rate_parity",
                              "false_positive_rate_parity", "true_negative_rate_parity",
                              "false_negative_rate_parity"]


def _groups(name: str, attributes: list[str] | None, sf: pd.DataFrame) -> pd.DataFrame:
    return sf[attribute_columns(name, attributes, sf)].astype(str).reset_index(drop=True)


class ExponentiatedGradientMitigation(BaseInProcessor):
    """fairlearn ``ExponentiatedGradient`` around the spec's downstream model (in-processing)."""

    name = "exponentiated_gradient"
    description = ("fairlearn ExponentiatedGradient (Agarwal et al., 2018): in-processing reduction that "
                   "trains the downstream model under a fairness constraint (randomised classifier).")

    def __init__(self, *, attributes: list[str] | None = None, constraint: ReductionConstraint = "equalized_odds",
                 eps: float = 0.01, max_iter: int = 50, eta0: float = 2.0):
        self.attributes = attributes
        self.constraint = constraint
        self.eps = eps
        self.max_iter = max_iter
        self.eta0 = eta0

    def fit_model(self, model: BaseModel, X: np.ndarray, y: np.ndarray, *,
                  sensitive_features: pd.DataFrame) -> Self:
        from fairlearn.reductions import ExponentiatedGradient

        from fairaudit.builtin.debiasers._sklearn_adaptor import SklearnClassifier

        check_inputs(self.name, X, y, sensitive_features)
        self.model_ = ExponentiatedGradient(SklearnClassifier(model), constraints=_reduction(self.constraint),
                                            eps=self.eps, max_iter=self.max_iter, eta0=self.eta0)
        self.model_.fit(np.asarray(X, dtype=np.float32), np.asarray(y).astype(np.int64),
                        sensitive_features=_groups(self.name, self.attributes, sensitive_features))
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability that the randomised mixture predicts positive: ``sum_i w_i h_i(X)``."""
        if not hasattr(self, "model_"):
            raise RuntimeError("exponentiated_gradient is not fitted; call fit first")
        eg = self.model_
        X = np.asarray(X, dtype=np.float32)
        out = np.zeros(len(X))
        for w, h in zip(np.asarray(eg.weights_), eg.predictors_, strict=True):
            if w > 0:
                out += w * h.predict(X)
        return out

    def report_blocks(self) -> list[dict[str, Any]]:
        eg = getattr(self, "model_", None)
        if eg is None:
            return []
        n = int(np.sum(np.asarray(eg.weights_) > 0))
        return [{"kind": "text", "title": "ExponentiatedGradient",
                 "text": f"Constraint {self.constraint} (eps {self.eps}): a mixture of {n} of "
                         f"{len(eg.predictors_)} fitted models after {eg.n_oracle_calls_} oracle calls; "
                         "the arm's score is the mixture's probability of predicting positive."}]

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{"max_iter": 4, "attributes": ["sex"]},
                {"max_iter": 3, "constraint": "demographic_parity", "attributes": ["sex"]}]


class ThresholdOptimizerMitigation(BasePostProcessor):
    """fairlearn ``ThresholdOptimizer`` on the fitted baseline model's scores (post-processing)."""

    name = "threshold_optimizer"
    description = ("fairlearn ThresholdOptimizer (Hardt et al., 2016): post-processing group-specific "
                   "randomised thresholds on the baseline model's scores; the arm's scores are 0/1 decisions.")

    def __init__(self, *, attributes: list[str] | None = None, constraint: ThresholdConstraint = "equalized_odds",
                 objective: Literal["balanced_accuracy_score", "accuracy_score"] = "balanced_accuracy_score",
                 grid_size: int = 1000, random_state: int | None = None):
        self.attributes = attributes
        self.constraint = constraint
        self.objective = objective
        self.grid_size = grid_size
        self.random_state = random_state

    def fit_model(self, model: BaseModel, X: np.ndarray, y: np.ndarray, *,
                  sensitive_features: pd.DataFrame) -> Self:
        """Learn the thresholds on ``model`` (already fitted) from the rows given."""
        from fairlearn.postprocessing import ThresholdOptimizer

        from fairaudit.builtin.debiasers._sklearn_adaptor import SklearnClassifier

        check_inputs(self.name, X, y, sensitive_features)
        self.model_ = ThresholdOptimizer(estimator=SklearnClassifier.prefit(model), constraints=self.constraint,
                                         objective=self.objective, grid_size=self.grid_size, prefit=True,
                                         predict_method="predict_proba")
        self.model_.fit(np.asarray(X, dtype=np.float32), np.asarray(y).astype(np.int64),
                        sensitive_features=_groups(self.name, self.attributes, sensitive_features))
        return self

    def predict_proba(self, X: np.ndarray, *, sensitive_features: pd.DataFrame) -> np.ndarray:
        """The 0/1 decisions (randomised where the thresholds mix, seeded by ``random_state``,
        else the run's seed)."""
        if not hasattr(self, "model_"):
            raise RuntimeError("threshold_optimizer is not fitted; call fit first")
        seed = self.random_state if self.random_state is not None else self.run_context().seed
        out = self.model_.predict(np.asarray(X, dtype=np.float32),
                                  sensitive_features=_groups(self.name, self.attributes, sensitive_features),
                                  random_state=seed)
        return np.asarray(out, dtype=np.float64)

    def report_blocks(self) -> list[dict[str, Any]]:
        to = getattr(self, "model_", None)
        if to is None:
            return []
        rows = []
        for group, rule in to.interpolated_thresholder_.interpolation_dict.items():
            rows.append([str(group), round(float(rule.p0), 4), round(float(rule.operation0.threshold), 4),
                         round(float(rule.p1), 4), round(float(rule.operation1.threshold), 4)])
        return [{"kind": "table", "title": "ThresholdOptimizer thresholds",
                 "columns": ["group", "p0", "threshold 0", "p1", "threshold 1"], "rows": rows,
                 "caption": f"Constraint {self.constraint}, objective {self.objective}: each group predicts "
                            "with threshold 0 with probability p0, else threshold 1 (score > threshold)."}]

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{"attributes": ["sex"], "random_state": 0},
                {"attributes": ["sex"], "constraint": "demographic_parity", "random_state": 0, "grid_size": 200}]


def _reduction(constraint: str) -> Any:
    from fairlearn import reductions as r

    return {"equalized_odds": r.EqualizedOdds, "demographic_parity": r.DemographicParity,
            "true_positive_rate_parity": r.TruePositiveRateParity,
            "false_positive_rate_parity": r.FalsePositiveRateParity,
            "error_rate_parity": r.ErrorRateParity}[constraint]()
