"""Reweighing (Kamiran & Calders, "Data preprocessing techniques for classification without
discrimination", KAIS 2012): weight every (group, label) cell by ``P(g) P(y) / P(g, y)`` so
that, under the weights, the label is independent of the group; features are unchanged."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

from fairaudit.base import BaseDebiaser
from fairaudit.builtin.debiasers._common import attribute_columns, check_inputs, joint_groups
from fairaudit.errors import DataError


class Reweighing(BaseDebiaser):
    """Kamiran–Calders sample weights for the downstream model; the representation is unchanged."""

    name = "reweighing"
    description = ("Reweighing (Kamiran & Calders, 2012): sample weights P(g)P(y)/P(g,y) make the label "
                   "independent of the (joint) sensitive groups in the training data.")
    modalities = frozenset({"features", "images"})

    def __init__(self, *, attributes: list[str] | None = None):
        self.attributes = attributes

    def fit(self, X: np.ndarray, y: np.ndarray, *, sensitive_features: pd.DataFrame) -> Self:
        check_inputs(self.name, X, y, sensitive_features)
        self.columns_ = attribute_columns(self.name, self.attributes, sensitive_features)
        g = joint_groups(sensitive_features, self.columns_).to_numpy()
        y = np.asarray(y).astype(np.int64)
        n = len(y)
        table: dict[tuple[str, int], float] = {}
        for gv in np.unique(g):
            for yv in np.unique(y):
                joint = float(np.sum((g == gv) & (y == yv))) / n
                if joint > 0:
                    table[(str(gv), int(yv))] = float(np.mean(g == gv)) * float(np.mean(y == yv)) / joint
        self.weights_ = table
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "weights_"):
            raise RuntimeError("Reweighing is not fitted; call fit first")
        return X

    def sample_weight(self, y: np.ndarray, *, sensitive_features: pd.DataFrame) -> np.ndarray:
        """The weight of every row's (group, label) cell; a cell unseen in ``fit`` is an error."""
        if not hasattr(self, "weights_"):
            raise RuntimeError("Reweighing is not fitted; call fit first")
        g = joint_groups(sensitive_features, self.columns_).to_numpy()
        keys = list(zip(g.astype(str), np.asarray(y).astype(np.int64).tolist(), strict=True))
        unseen = sorted({k for k in keys if k not in self.weights_})
        if unseen:
            raise DataError(f"reweighing: (group, label) cells {unseen[:5]} were not in the fitted data")
        return np.asarray([self.weights_[k] for k in keys], dtype=np.float64)

    def report_blocks(self) -> list[dict[str, Any]]:
        rows = [[g, y, round(w, 4)] for (g, y), w in sorted(getattr(self, "weights_", {}).items())]
        return [{"kind": "table", "title": "Reweighing weights", "columns": ["group", "label", "weight"],
                 "rows": rows, "caption": "P(g) P(y) / P(g, y) per cell of the training split."}]

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"attributes": ["sex"]}]
