"""``predictions``: scores a model already gave, with labels and groups, from a CSV or Parquet file.

The audit of an existing model: no model is trained and nothing is split.  Every row is test
data, except rows whose ``split_column`` says ``val``: those only fix operating points (e.g. the
threshold of sensitivity at a fixed specificity).  Each score column is one arm.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from fairaudit.base import BaseDatasetLoader
from fairaudit.builtin.datasets._groups import Bins, check_bins, sensitive_frame
from fairaudit.builtin.datasets._tabular_io import csv_row, detect_format, missing_column, read_header, read_table
from fairaudit.builtin.datasets.table import binary_target
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError

__all__ = ["PredictionsDataset", "logistic", "write_example"]

ScoreKind = Literal["probability", "logit", "margin"]


class PredictionsDataset(BaseDatasetLoader):
    """Scores of a model you already have, with the labels and groups of the same rows.

    No ``model:`` and no ``split:`` go with this dataset: the scores are audited as given.

    Parameters
    ----------
    path:
        CSV/TSV (optionally compressed) or Parquet file; relative to the spec's folder.
    target:
        Label column: 0/1 (or boolean) unless ``positive_label``.
    score:
        The score column (the arm takes its name), or a mapping ``{arm name: column}`` to audit
        several models on the same rows: one arm each, the first the reference the others are
        compared with (paired intervals).
    sensitive:
        Sensitive-attribute columns (as in ``table``: an empty cell forms the group
        ``"(missing)"``; ``NA``, ``None``, ``null`` are values unless in ``na_values``).
    patient_id:
        Patient column (default: one patient per row); the bootstrap resamples patients.
    split_column:
        A column whose value ``val_value`` marks rows used only to pick operating points
        (sensitivity at fixed specificity); every other row is test data.
    val_value:
        The value of ``split_column`` that marks validation rows.
    score_kind:
        ``probability`` (scores in [0, 1]), ``logit`` or ``margin`` (any real number, converted
        with the logistic function so that the decision threshold 0.5 is the model's boundary
        at 0). Calibration metrics (Brier score, ECE, calibration curves) of converted margins
        are not meaningful: a margin is no log-odds.
    bins:
        Groups of a continuous sensitive column, as in ``table``
        (``{age: [0, 50, 65, 120]}`` or with ``labels``).
    positive_label:
        Target value counted as positive (e.g. ``"yes"``); every other value is negative.
    format:
        ``auto`` (from the suffix), ``csv`` or ``parquet``.
    sep, na_values, encoding:
        CSV delimiter, extra strings read as missing, text encoding (as in ``table``).
    """

    name = "predictions"
    description = "Scores an existing model gave, with labels and groups, from a CSV or Parquet file (no training)."
    provides_scores: ClassVar[bool] = True

    def __init__(
        self,
        *,
        path: str,
        target: str,
        score: str | dict[str, str],
        sensitive: list[str],
        patient_id: str | None = None,
        split_column: str | None = None,
        val_value: str = "val",
        score_kind: ScoreKind = "probability",
        bins: Bins | None = None,
        positive_label: str | int | float | bool | list[str | int | float] | None = None,
        format: Literal["auto", "csv", "parquet"] = "auto",
        sep: str = ",",
        na_values: list[str] | None = None,
        encoding: str = "utf-8",
    ):
        self.path = path
        self.target = target
        self.score = score
        self.sensitive = sensitive
        self.patient_id = patient_id
        self.split_column = split_column
        self.val_value = val_value
        self.score_kind = score_kind
        self.bins = bins
        self.positive_label = positive_label
        self.format = format
        self.sep = sep
        self.na_values = na_values
        self.encoding = encoding

    # ------------------------------------------------------------------ contract
    def resolve(self, base_dir: Path) -> PredictionsDataset:
        path = Path(self.path).expanduser()
        if not path.is_absolute():
            self.path = str((Path(base_dir) / path).resolve())
        return self

    def check(self, base_dir: Path) -> list[str]:
        problems = self._static_problems()
        path = self._file(base_dir)
        try:
            fmt = self._format(path)
            columns = read_header(path, fmt, sep=self.sep, encoding=self.encoding)
        except DataError as exc:
            return [*problems, str(exc)]
        return problems + [str(missing_column(str(path), column, role, columns))
                           for column, role in self._named_columns() if column not in columns]

    def load(self) -> AuditDataset:
        problems = self._static_problems()
        if problems:
            raise DataError(f"{self.name}: dataset.params.{problems[0]}")
        path = self._file(Path.cwd())
        fmt = self._format(path)
        label = str(path)
        columns = read_header(path, fmt, sep=self.sep, encoding=self.encoding)
        for column, role in self._named_columns():
            if column not in columns:
                raise missing_column(label, column, role, columns)
        wanted = list(dict.fromkeys(c for c, _ in self._named_columns()))
        literal = [self.target, *self.sensitive, *([self.split_column] if self.split_column else [])]
        frame = read_table(path, fmt, sep=self.sep, na_values=self.na_values, columns=wanted,
                           encoding=self.encoding, literal=literal).reset_index(drop=True)
        csv_like = fmt == "csv"
        y = binary_target(frame[self.target], self.target, self.positive_label, label, csv_like)
        scores = {arm: self._scores(frame[column], column, label, csv_like) for arm, column in self.arms().items()}
        val_rows = self._val_rows(frame, label)
        return AuditDataset(
            name=path.stem,
            y=y,
            sensitive=sensitive_frame(frame, list(self.sensitive), label, self.bins),
            patient_ids=_patients(frame[self.patient_id] if self.patient_id else None, len(frame), label, csv_like),
            scores=scores,
            meta={"description": f"Scores of {len(scores)} model(s) from {path.name}", "source": str(path),
                  "target": self.target, "positive_label": self.positive_label, "score_kind": self.score_kind,
                  "score_columns": self.arms(), "split_column": self.split_column, "val_value": self.val_value,
                  "val_rows": val_rows},
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        path = write_example(Path(tempfile.gettempdir()) / "fairaudit-predictions-example")
        return [{"path": str(path), "target": "label", "score": "p_a", "sensitive": ["sex", "site"],
                 "patient_id": "patient"},
                {"path": str(path), "target": "label", "score": {"model_a": "logit_a", "model_b": "logit_b"},
                 "score_kind": "logit", "sensitive": ["sex"], "split_column": "fold"}]

    # ------------------------------------------------------------------ pieces
    def arms(self) -> dict[str, str]:
        """Arm name -> score column, in the order given."""
        return {self.score: self.score} if isinstance(self.score, str) else dict(self.score)

    def _static_problems(self) -> list[str]:
        problems = check_bins(self.bins, self.sensitive)
        if isinstance(self.score, Mapping):
            if not self.score:
                problems.append("score: give a column, or a mapping {arm name: column} with at least one entry")
            problems += [f"score: the arm name {arm!r} is blank" for arm in self.score if not str(arm).strip()]
        return problems

    def _file(self, base_dir: Path) -> Path:
        path = Path(self.path).expanduser()
        return path if path.is_absolute() else Path(base_dir) / path

    def _format(self, path: Path) -> str:
        fmt = detect_format(path, self.format)
        if fmt == "npz":
            raise DataError(f"{path}: predictions are read from a CSV or Parquet table, not NPZ")
        return fmt

    def _named_columns(self) -> list[tuple[str, str]]:
        named = [(self.target, "target")]
        named += [(column, f"score of arm {arm!r}") for arm, column in self.arms().items()]
        named += [(c, "sensitive attribute") for c in self.sensitive]
        if self.patient_id:
            named.append((self.patient_id, "patient_id"))
        if self.split_column:
            named.append((self.split_column, "split_column"))
        return named

    def _scores(self, series: pd.Series, column: str, label: str, csv_like: bool) -> np.ndarray:
        """The column as probabilities: numbers, never missing, in [0, 1] (or converted from
        logits/margins); a bad value is an error naming the column and its line."""
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        text = np.isnan(numbers) & series.notna().to_numpy()
        if text.any():
            first = int(np.flatnonzero(text)[0])
            raise DataError(f"{label}: score column {column!r} holds {int(text.sum())} value(s) that are not "
                            f"numbers, the first {series.iloc[first]!r} at {_where(first, csv_like)}")
        missing = np.isnan(numbers)
        if missing.any():
            first = int(np.flatnonzero(missing)[0])
            raise DataError(f"{label}: score column {column!r} has {int(missing.sum())} missing value(s) (empty or "
                            f"NaN), the first at {_where(first, csv_like)}; every row needs a score (drop the rows "
                            "the model did not score)")
        if self.score_kind != "probability":
            return logistic(numbers)
        outside = (numbers < 0.0) | (numbers > 1.0)
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            low, high = float(numbers[outside].min()), float(numbers[outside].max())
            raise DataError(f"{label}: score column {column!r} has {int(outside.sum())} value(s) outside [0, 1] "
                            f"(from {low:g} to {high:g}), the first {numbers[first]:g} at {_where(first, csv_like)}; "
                            "with score_kind: probability every score is a probability. If the scores are logits "
                            "or decision-function margins, set score_kind: logit (or margin) in dataset.params")
        return numbers

    def _val_rows(self, frame: pd.DataFrame, label: str) -> np.ndarray:
        """Positions of the validation rows (none without ``split_column``)."""
        if not self.split_column:
            return np.zeros(0, dtype=np.int64)
        values = frame[self.split_column].astype(object)
        is_val = (values.notna() & (values.astype(str).str.strip() == str(self.val_value))).to_numpy()
        if is_val.all():
            raise DataError(f"{label}: every row has {self.split_column} = {self.val_value!r}: no test rows are "
                            "left to audit (validation rows only fix operating points)")
        return np.flatnonzero(is_val).astype(np.int64)


def logistic(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow; a negative ``x`` always maps below 0.5 and a
    non-negative one to 0.5 or above, so the threshold 0.5 is exactly the boundary at 0."""
    x = np.asarray(x, dtype=np.float64)
    p = 0.5 * (1.0 + np.tanh(0.5 * x))
    p[(x < 0) & (p >= 0.5)] = np.nextafter(0.5, 0.0)
    return p


def _where(position: int, csv_like: bool) -> str:
    return f"CSV line {csv_row(position)}" if csv_like else f"row {position}"


def _patients(column: pd.Series | None, n: int, label: str, csv_like: bool) -> np.ndarray:
    if column is None:
        return np.asarray([f"R{i}" for i in range(n)], dtype=object)
    if column.isna().any():
        first = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise DataError(f"{label}: patient_id column {column.name!r} has {int(column.isna().sum())} missing "
                        f"value(s), the first at {_where(first, csv_like)}")
    return column.astype(str).to_numpy(dtype=object)


def write_example(folder: Path) -> Path:
    """A tiny seeded predictions CSV (``p_a`` probabilities, ``logit_a``/``logit_b`` logits, a ``fold``
    column with validation rows) for ``get_test_params``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = 80
    y = rng.integers(0, 2, n)
    logit = 1.5 * (2 * y - 1) + rng.normal(0, 1.2, n)
    frame = pd.DataFrame({"patient": [f"p{i // 2}" for i in range(n)], "sex": rng.choice(["F", "M"], n),
                          "site": rng.choice(["north", "south"], n), "label": y,
                          "p_a": np.round(logistic(logit), 4), "logit_a": np.round(logit, 4),
                          "logit_b": np.round(logit + rng.normal(0, 0.5, n), 4),
                          "fold": np.where(np.arange(n) % 4 == 0, "val", "test")})
    path = folder / "predictions.csv"
    tmp = folder / f".predictions.{os.getpid()}.tmp"
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    return path
