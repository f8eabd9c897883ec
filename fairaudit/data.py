"""The container every dataset plugin returns and every stage of an audit consumes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from fairaudit.errors import DataError

#: ``oracle(original_indices, factor) -> images`` renders the same samples with one factor flipped.
CounterfactualOracle = Callable[[np.ndarray, str], np.ndarray]


@dataclass
class AuditDataset:
    """Features, images or a model's scores, a binary target, sensitive attributes and patient ids.

    Parameters
    ----------
    name:
        Short name used in reports.
    y:
        Binary target, shape ``(n,)``, values 0/1.
    sensitive:
        One column per protected attribute (categorical values; ``NaN`` = missing).
    patient_ids:
        Patient identifier per row (bootstrap and splits resample patients, not rows).
    X:
        Feature matrix ``(n, d)`` (e.g. foundation-model embeddings), or ``None``.
    images:
        Float images ``(n, C, H, W)`` in ``[0, 1]``, or ``None``.
    masks:
        Optional segmentation masks ``(n, H, W)`` (e.g. lungs), values 0/1.
    extras:
        Further per-row arrays (e.g. ``shortcut`` artefact flag, continuous ``age``).
    meta:
        Free-form description and ground truth (which dimensions carry which attribute...).
    oracle:
        Optional counterfactual oracle, see :data:`CounterfactualOracle`.
    index:
        Row ids in the originally loaded dataset (kept through :meth:`subset`).
    scores:
        Scores a model already gave each row (``arm name -> (n,)`` floats in ``[0, 1]``), for
        an audit of existing predictions (modality ``"scores"``: no model is trained); or ``None``.
    """

    name: str
    y: np.ndarray
    sensitive: pd.DataFrame
    patient_ids: np.ndarray
    X: np.ndarray | None = None
    images: np.ndarray | None = None
    masks: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    oracle: CounterfactualOracle | None = None
    index: np.ndarray | None = None
    scores: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y)
        self.patient_ids = np.asarray(self.patient_ids)
        self.sensitive = self.sensitive.reset_index(drop=True)
        n = len(self.y)
        if self.index is None:
            self.index = np.arange(n)
        if self.scores is not None:
            self.scores = {str(k): np.asarray(v, dtype=np.float64).reshape(-1) for k, v in self.scores.items()}
        if self.X is None and self.images is None and not self.scores:
            raise DataError(f"dataset {self.name!r}: neither features (X), images nor scores were given")
        lengths: dict[str, int] = {
            "y": n,
            "sensitive": len(self.sensitive),
            "patient_ids": len(self.patient_ids),
            "index": len(self.index),
        }
        for label, arr in (("X", self.X), ("images", self.images), ("masks", self.masks)):
            if arr is not None:
                lengths[label] = len(arr)
        lengths.update({f"extras[{k}]": len(v) for k, v in self.extras.items()})
        lengths.update({f"scores[{k}]": len(v) for k, v in (self.scores or {}).items()})
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
            raise DataError(f"dataset {self.name!r}: lengths differ ({detail})")
        if n == 0:
            raise DataError(f"dataset {self.name!r} is empty")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def modality(self) -> str:
        """``"images"`` when images are present, else ``"features"`` when features are, else
        ``"scores"`` (a model's scores only)."""
        if self.images is not None:
            return "images"
        return "features" if self.X is not None else "scores"

    @property
    def inputs(self) -> np.ndarray:
        """What a downstream model consumes: images if present, else features."""
        data = self.images if self.images is not None else self.X
        if data is None:
            raise DataError(f"dataset {self.name!r} holds a model's scores only: there are no inputs "
                            "to train or run a model on")
        return data

    @property
    def attributes(self) -> list[str]:
        return list(self.sensitive.columns)

    def subset(self, rows: np.ndarray) -> AuditDataset:
        """Rows ``rows`` (integer positions) as a new dataset sharing the oracle.

        Memory-mapped or lazy features (``np.memmap``, :class:`~fairaudit.outofcore.RowView`)
        stay on disk: the subset's ``X`` is a lazy view of the selected rows; so do streamed
        images (:class:`~fairaudit.lazy_images.LazyImages`).
        """
        from fairaudit.outofcore import subset_rows

        rows = np.asarray(rows)

        def take(a: np.ndarray | None) -> np.ndarray | None:
            from fairaudit.lazy_images import is_lazy_images

            if a is None:
                return None
            return a.take(rows) if is_lazy_images(a) else a[rows]  # type: ignore[union-attr]

        assert self.index is not None
        return replace(
            self,
            y=self.y[rows],
            sensitive=self.sensitive.iloc[rows].reset_index(drop=True),
            patient_ids=self.patient_ids[rows],
            X=None if self.X is None else subset_rows(self.X, rows),  # type: ignore[arg-type]
            images=take(self.images),
            masks=take(self.masks),
            extras={k: v[rows] for k, v in self.extras.items()},
            index=self.index[rows],
            scores=None if self.scores is None else {k: v[rows] for k, v in self.scores.items()},
        )

    def counterfactual(self, factor: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Oracle counterfactual images of ``rows`` with ``factor`` flipped."""
        if self.oracle is None:
            raise DataError(f"dataset {self.name!r} has no counterfactual oracle")
        assert self.index is not None
        idx = self.index if rows is None else self.index[np.asarray(rows)]
        return self.oracle(idx, factor)

    def summary(self) -> dict[str, Any]:
        """Counts and prevalence per group of every attribute (for reports): the
        :data:`~fairaudit.caps.MAX_GROUPS` largest groups of each, and under ``groups_omitted`` how
        many groups and rows the others hold."""
        from fairaudit.caps import largest

        out: dict[str, Any] = {
            "n": len(self),
            "n_patients": len(np.unique(self.patient_ids)),
            "prevalence": float(np.mean(self.y)),
            "modality": self.modality,
            "shape": [] if self.modality == "scores" else list(self.inputs.shape[1:]),
            "groups": {},
        }
        omitted: dict[str, dict[str, int]] = {}
        for col in self.attributes:
            values = self.sensitive[col].astype("object").where(self.sensitive[col].notna(), "(missing)")
            frame = pd.DataFrame({"group": values.astype(str).to_numpy(), "y": np.asarray(self.y, dtype=float)})
            agg = frame.groupby("group", sort=True)["y"].agg(["size", "mean"])
            rows = [{"group": str(g), "n": int(n), "prevalence": float(p)}
                    for g, n, p in zip(agg.index, agg["size"], agg["mean"], strict=True)]
            kept, left_out = largest(rows)
            out["groups"][col] = kept
            if left_out:
                omitted[col] = {"groups": left_out, "n": len(self) - sum(r["n"] for r in kept)}
        if omitted:
            out["groups_omitted"] = omitted
        return out
