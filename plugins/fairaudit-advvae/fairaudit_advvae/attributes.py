"""Sensitive attributes as adversary targets: type inference, encoding and chance levels.

numpy/pandas only (no torch), so the registration path stays light.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairaudit import DataError

AttributeKind = Literal["binary", "multiclass", "continuous"]

#: Values the runner (or users) use for "no value": masked out of the adversary's loss.
MISSING_MARKERS = frozenset({"(missing)", "", "nan", "NaN", "None"})

#: A numeric column with more distinct values than this is treated as continuous.
MAX_CATEGORIES = 10


@dataclass(frozen=True)
class AttributeTarget:
    """How one sensitive attribute is encoded for its adversary.

    Parameters
    ----------
    name:
        Column name in ``sensitive_features``.
    kind:
        ``"binary"`` (one logit, BCE), ``"multiclass"`` (one logit per class, cross-entropy)
        or ``"continuous"`` (one output, MSE on the standardised value).
    classes:
        Group labels (as strings, sorted) for categorical kinds.
    mean, std:
        Standardisation of a continuous attribute (training rows).
    chance_loss:
        Loss of the best constant predictor on the training rows: the entropy of the group
        frequencies (categorical) or 1.0 (standardised MSE).  Adversary losses are divided by it.
    chance_score:
        Score of the best constant predictor: majority-group accuracy, or R^2 = 0.
    """

    name: str
    kind: AttributeKind
    classes: tuple[str, ...] = field(default_factory=tuple)
    mean: float = 0.0
    std: float = 1.0
    chance_loss: float = 1.0
    chance_score: float = 0.0
    prior: tuple[float, ...] = field(default_factory=tuple)

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.kind == "multiclass" else 1

    @property
    def score_name(self) -> str:
        return "R2" if self.kind == "continuous" else "accuracy"

    def encode(self, column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Targets (class index or standardised value) and a mask of rows that have a value."""
        if self.kind == "continuous":
            values = _numeric(column)
            mask = np.isfinite(values)
            target = np.where(mask, (values - self.mean) / self.std, 0.0)
            return target.astype(np.float32), mask
        labels = _labels(column)
        lookup = {c: i for i, c in enumerate(self.classes)}
        index = np.array([lookup.get(v, -1) if v is not None else -1 for v in labels])
        mask = index >= 0
        return np.where(mask, index, 0).astype(np.float32), mask

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"] = list(self.classes)
        data["prior"] = list(self.prior)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributeTarget:
        return cls(
            **{
                **data,
                "classes": tuple(data.get("classes", ())),
                "prior": tuple(data.get("prior", ())),
            }
        )


def _labels(column: pd.Series) -> list[str | None]:
    """String labels, ``None`` where missing."""
    out: list[str | None] = []
    for v in column.tolist():
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT:
            out.append(None)
            continue
        s = str(v)
        out.append(None if s in MISSING_MARKERS else s)
    return out


def _numeric(column: pd.Series) -> np.ndarray:
    """Float values, NaN where missing or not a number (e.g. the runner's ``"(missing)"``)."""
    return pd.to_numeric(column.astype("object"), errors="coerce").to_numpy(dtype=np.float64)


def infer_kind(column: pd.Series) -> AttributeKind:
    """Binary, multi-class or continuous, from the values of a column.

    A column is continuous when (almost) all its non-missing values are numbers and it has more
    than :data:`MAX_CATEGORIES` distinct values; otherwise it is categorical.
    """
    labels = [v for v in _labels(column) if v is not None]
    numeric = _numeric(column)
    n_numeric = int(np.isfinite(numeric).sum())
    if (
        labels
        and n_numeric >= 0.99 * len(labels)
        and len(np.unique(numeric[np.isfinite(numeric)])) > MAX_CATEGORIES
    ):
        return "continuous"
    return "binary" if len(set(labels)) <= 2 else "multiclass"


def build_target(name: str, column: pd.Series, kind: str = "auto") -> AttributeTarget:
    """Fit the encoding of attribute ``name`` on the training column."""
    resolved: AttributeKind = infer_kind(column) if kind == "auto" else kind  # type: ignore[assignment]
    if resolved == "continuous":
        values = _numeric(column)
        values = values[np.isfinite(values)]
        if len(values) < 2 or float(values.std()) == 0.0:
            raise DataError(
                f"advvae: continuous attribute {name!r} needs at least two distinct numeric values"
            )
        return AttributeTarget(
            name,
            "continuous",
            mean=float(values.mean()),
            std=float(values.std()),
            chance_loss=1.0,
            chance_score=0.0,
        )
    labels = [v for v in _labels(column) if v is not None]
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise DataError(
            f"advvae: attribute {name!r} has fewer than two groups in the training data "
            f"({list(classes)}); nothing to remove"
        )
    if resolved == "binary" and len(classes) > 2:
        raise DataError(
            f"advvae: attribute {name!r} was declared binary but has {len(classes)} groups "
            f"{list(classes)[:6]}; use 'multiclass'"
        )
    counts = np.array([labels.count(c) for c in classes], dtype=np.float64)
    freq = counts / counts.sum()
    entropy = float(-(freq * np.log(freq)).sum())
    kind_out: AttributeKind = "binary" if len(classes) == 2 else "multiclass"
    return AttributeTarget(
        name,
        kind_out,
        classes=classes,
        chance_loss=max(entropy, 1e-3),
        chance_score=float(freq.max()),
        prior=tuple(float(f) for f in freq),
    )


def build_targets(
    sensitive_features: pd.DataFrame,
    attributes: tuple[str, ...] | list[str],
    kinds: dict[str, str] | None = None,
) -> list[AttributeTarget]:
    """One :class:`AttributeTarget` per requested attribute; a missing column is a DataError."""
    if not attributes:
        raise DataError(
            "advvae: 'attributes' is empty; name at least one sensitive attribute to remove"
        )
    kinds = dict(kinds or {})
    unknown_kinds = sorted(set(kinds) - set(attributes))
    if unknown_kinds:
        raise DataError(
            f"advvae: 'attribute_types' names {unknown_kinds}, which are not in 'attributes' "
            f"{list(attributes)}"
        )
    missing = [a for a in attributes if a not in sensitive_features.columns]
    if missing:
        raise DataError(
            f"advvae: attribute(s) {missing} are not columns of sensitive_features; "
            f"available: {list(sensitive_features.columns)}"
        )
    return [build_target(a, sensitive_features[a], kinds.get(a, "auto")) for a in attributes]


def encode_targets(
    targets: list[AttributeTarget], sensitive_features: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Stack every attribute's encoding: values ``(n, A)`` float32 and mask ``(n, A)`` float32."""
    cols, masks = [], []
    for t in targets:
        v, m = t.encode(sensitive_features[t.name])
        cols.append(v)
        masks.append(m.astype(np.float32))
    return np.stack(cols, axis=1), np.stack(masks, axis=1)
