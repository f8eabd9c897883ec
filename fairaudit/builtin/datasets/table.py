"""``table``: features, target and sensitive attributes from CSV (or zipped CSV), Parquet, NPZ."""

from __future__ import annotations

import fnmatch
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairaudit.base import BaseDatasetLoader
from fairaudit.builtin.datasets._groups import MISSING_GROUP, Bins, check_bins, sensitive_frame
from fairaudit.builtin.datasets._leakage import describe, suspicious_columns
from fairaudit.builtin.datasets._tabular_io import (
    csv_row,
    detect_format,
    missing_column,
    read_header,
    read_npz,
    read_table,
)
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError

__all__ = ["MISSING_GROUP", "TableDataset", "binary_target", "embedding_matrix", "sensitive_frame",
           "write_example"]


class TableDataset(BaseDatasetLoader):
    """A table of features (e.g. exported foundation-model embeddings) with target and groups.

    Parameters
    ----------
    path:
        CSV/TSV (optionally compressed, or the only CSV in a ``.zip``), Parquet or NPZ file;
        relative to the spec's folder.
    target:
        Target column (NPZ: array key).  Must be 0/1 (or boolean) unless ``positive_label``.
    sensitive:
        Sensitive-attribute columns; a missing (empty) cell forms the group ``"(missing)"``
        (warned); ``NA``, ``None``, ``null`` are values here, not missing (unless in
        ``na_values``).  A numeric column with many values is warned of (suggesting ``bins``).
    bins:
        Groups of a continuous sensitive column: ``{age: [0, 50, 65, 120]}`` (bins ``[0, 50)``,
        ``[50, 65)``, ``[65, 120]``) or ``{age: {edges: [...], labels: ["<50", "50-64", "65+"]}}``;
        ``-.inf`` / ``.inf`` leave an end open.  A value outside the edges is an error.
    features:
        Feature columns: a list, one name, a glob (``"emb_*"``) or a prefix (``"emb_"``);
        ``None`` = every other column, except columns that give the target away (a copy of it,
        the raw column it was coded or thresholded from) and row identifiers, which are left out
        with a warning (named ones are kept, with the same warning).  NPZ: the key of a 2-D
        array (or a list of 1-D keys).
    patient_id:
        Patient column (default: one patient per row).
    positive_label:
        Target value counted as positive (e.g. ``"<30"``); every other value is negative.
    extras:
        Further columns kept per row (e.g. continuous age), not used as features.
    embedding_column:
        A column holding whole vectors (Parquet list column, or ``"[0.1, 0.2]"`` strings).
    member:
        The CSV inside a ``.zip`` holding several (full name or base name).
    format:
        ``auto`` (from the suffix), ``csv``, ``parquet`` or ``npz``.
    sep, na_values:
        CSV delimiter, and extra strings read as missing (e.g. ``["?"]``).
    encoding:
        Text encoding of a CSV (default ``utf-8``, a byte-order mark is skipped); e.g. ``cp1252``
        for a file saved by Excel on Windows, ``latin-1``, ``utf-16``.
    encode_categorical:
        One-hot encode non-numeric feature columns, a missing value as its own category
        ``"(missing)"`` (else they are an error).  Missing values in numeric features are an
        error.
    """

    name = "table"
    modality = "features"
    description = ("Features, binary target and sensitive attributes from a CSV, Parquet or "
                   "NPZ file.")

    def __init__(
        self,
        *,
        path: str,
        target: str,
        sensitive: list[str],
        features: list[str] | str | None = None,
        patient_id: str | None = None,
        positive_label: str | int | float | bool | list[str | int | float] | None = None,
        extras: list[str] | None = None,
        embedding_column: str | None = None,
        member: str | None = None,
        format: Literal["auto", "csv", "parquet", "npz"] = "auto",
        sep: str = ",",
        na_values: list[str] | None = None,
        encoding: str = "utf-8",
        encode_categorical: bool = True,
        bins: Bins | None = None,
    ):
        self.path = path
        self.target = target
        self.sensitive = sensitive
        self.features = features
        self.patient_id = patient_id
        self.positive_label = positive_label
        self.extras = extras
        self.embedding_column = embedding_column
        self.member = member
        self.format = format
        self.sep = sep
        self.na_values = na_values
        self.encoding = encoding
        self.encode_categorical = encode_categorical
        self.bins = bins

    # ------------------------------------------------------------------ contract
    def resolve(self, base_dir: Path) -> TableDataset:
        path = Path(self.path).expanduser()
        if not path.is_absolute():
            self.path = str((Path(base_dir) / path).resolve())
        return self

    def check(self, base_dir: Path) -> list[str]:
        path = self._file(base_dir)
        try:
            fmt = detect_format(path, self.format)
            columns = read_header(path, fmt, member=self.member, sep=self.sep, encoding=self.encoding)
        except DataError as exc:
            return [str(exc)]
        problems = check_bins(self.bins, self.sensitive)
        for column, role in self._named_columns():
            if column not in columns:
                problems.append(str(missing_column(str(path), column, role, columns)))
        if fmt != "npz" and not problems:
            try:
                self._feature_columns(columns, str(path))
            except DataError as exc:
                problems.append(str(exc))
        return problems

    def load(self) -> AuditDataset:
        problems = check_bins(self.bins, self.sensitive)
        if problems:
            raise DataError(f"{self.name}: dataset.params.{problems[0]}")
        path = self._file(Path.cwd())
        fmt = detect_format(path, self.format)
        label = str(path)
        if fmt == "csv" and path.suffix.lower() == ".zip":
            label = f"{path}!{self.member}" if self.member else label
        if fmt == "npz":
            return self._load_npz(path)
        columns = read_header(path, fmt, member=self.member, sep=self.sep, encoding=self.encoding)
        self._require_named(columns, label)
        feature_cols = self._feature_columns(columns, label)
        wanted = list(dict.fromkeys([c for c, _ in self._named_columns()] + feature_cols))
        frame = read_table(path, fmt, member=self.member, sep=self.sep, na_values=self.na_values,
                           columns=wanted, encoding=self.encoding, literal=[self.target, *self.sensitive])
        frame = frame.reset_index(drop=True)
        csv_like = fmt == "csv"
        y = binary_target(frame[self.target], self.target, self.positive_label, label, csv_like)
        feature_cols = self._guard(frame, feature_cols, y, label)
        X, names = self._features(frame, feature_cols, label, csv_like)
        sensitive = sensitive_frame(frame, list(self.sensitive), label, self.bins)
        return AuditDataset(
            name=Path(self.member or path.name).stem,
            X=X,
            y=y,
            sensitive=sensitive,
            patient_ids=self._patients(frame[self.patient_id] if self.patient_id else None,
                                       len(frame), label, csv_like),
            extras={c: _extra(frame[c]) for c in self.extras or []},
            meta={"description": f"Table {path.name}" + (f"!{self.member}" if self.member else ""),
                  "source": str(path), "feature_names": names, "target": self.target,
                  "positive_label": self.positive_label},
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        folder = Path(tempfile.gettempdir()) / "fairaudit-table-example"
        csv_path, npz_path = write_example(folder)
        return [{"path": str(csv_path), "target": "label", "sensitive": ["sex", "site"],
                 "features": "f_", "patient_id": "patient"},
                {"path": str(npz_path), "target": "label", "sensitive": ["sex"],
                 "features": "X"}]

    # ------------------------------------------------------------------ pieces
    def _file(self, base_dir: Path) -> Path:
        path = Path(self.path).expanduser()
        return path if path.is_absolute() else Path(base_dir) / path

    def _named_columns(self) -> list[tuple[str, str]]:
        named = [(self.target, "target")]
        named += [(c, "sensitive attribute") for c in self.sensitive]
        if self.patient_id:
            named.append((self.patient_id, "patient_id"))
        named += [(c, "extra column") for c in self.extras or []]
        if self.embedding_column:
            named.append((self.embedding_column, "embedding_column"))
        if isinstance(self.features, list):
            named += [(c, "feature") for c in self.features]
        return named

    def _feature_columns(self, columns: list[str], label: str) -> list[str]:
        """Feature columns named by ``features`` (list, exact name, glob or prefix)."""
        chosen = self._chosen_features(columns)
        if not chosen and not self.embedding_column:
            raise DataError(f"{label}: features {self.features!r} match no column; columns: "
                            f"{', '.join(columns[:30])}")
        return chosen

    def _chosen_features(self, columns: list[str]) -> list[str]:
        """``features`` resolved against ``columns`` (possibly none); ``None`` = every column
        without another role (none when an ``embedding_column`` holds the features)."""
        if isinstance(self.features, list):
            return list(self.features)
        used = self._role_columns()
        if self.features is None:
            return [] if self.embedding_column else [c for c in columns if c not in used]
        return _match_columns(self.features, columns, used)

    def _role_columns(self) -> set[str]:
        """Target, sensitive, extra, patient and embedding columns: never default features."""
        used = {self.target, *self.sensitive, *(self.extras or [])}
        if self.patient_id:
            used.add(self.patient_id)
        if self.embedding_column:
            used.add(self.embedding_column)
        return used

    def _require_named(self, available: list[str], label: str) -> None:
        """Raise the ``missing_column`` error for the first named column not in ``available``."""
        for column, role in self._named_columns():
            if column not in available:
                raise missing_column(label, column, role, available)

    def _guard(self, frame: pd.DataFrame, cols: list[str], y: np.ndarray, label: str) -> list[str]:
        """``cols`` less the columns that give the target away or identify rows when ``features``
        is left to its default (warned); named features are kept, with the same warning."""
        found = suspicious_columns(frame, cols, y)
        if not found:
            return cols
        if self.features is not None:
            warnings.warn(f"{label}: feature column(s) named in params.features look like target leakage "
                          f"or row identifiers: {describe(found)}. They are kept as asked, but a model can "
                          "learn the answer (or the rows) from them", UserWarning, stacklevel=3)
            return cols
        kept = [c for c in cols if c not in found]
        if not kept and not self.embedding_column:
            raise DataError(f"{label}: every default feature column gives the target away or identifies rows: "
                            f"{describe(found)}; name the features with params.features")
        warnings.warn(f"{label}: left out of the default features (every column but target, sensitive, "
                      f"patient and extras): {describe(found)}. Name the columns with params.features to "
                      "choose the features yourself", UserWarning, stacklevel=3)
        return kept

    def _features(self, frame: pd.DataFrame, cols: list[str], label: str,
                  csv_like: bool) -> tuple[np.ndarray, list[str]]:
        parts, names = [], []
        if cols:
            block = frame[cols]
            numeric = [c for c in cols if pd.api.types.is_numeric_dtype(block[c])
                       or pd.api.types.is_bool_dtype(block[c])]
            other = [c for c in cols if c not in numeric]
            if other and not self.encode_categorical:
                raise DataError(f"{label}: feature column(s) {other} are not numeric; "
                                "set encode_categorical: true or choose numeric features")
            _no_missing(block, numeric, label, csv_like)
            if numeric:
                parts.append(block[numeric].to_numpy(dtype=np.float64))
                names += numeric
            if other:
                text = block[other].astype(object).where(block[other].notna(), MISSING_GROUP)
                dummies = pd.get_dummies(text.astype(str), prefix=other, prefix_sep="=")
                parts.append(dummies.to_numpy(dtype=np.float64))
                names += list(dummies.columns)
        if self.embedding_column:
            emb = embedding_matrix(frame[self.embedding_column], self.embedding_column, label,
                                   csv_like)
            parts.append(emb)
            names += [f"{self.embedding_column}[{i}]" for i in range(emb.shape[1])]
        X = np.hstack(parts) if len(parts) > 1 else parts[0]
        X = X.astype(np.float32)
        _all_finite(X, names, label, csv_like)
        return X, names

    def _patients(self, column: pd.Series | None, n: int, label: str, csv_like: bool) -> np.ndarray:
        if column is None:
            return np.asarray([f"R{i}" for i in range(n)], dtype=object)
        if column.isna().any():
            first = int(np.flatnonzero(column.isna().to_numpy())[0])
            raise DataError(f"{label}: patient_id column {column.name!r} has "
                            f"{int(column.isna().sum())} missing value(s), first at "
                            f"{_where(first, csv_like)}")
        return column.astype(str).to_numpy(dtype=object)

    def _load_npz(self, path: Path) -> AuditDataset:
        arrays = read_npz(path)
        label = str(path)
        self._require_named(list(arrays), label)
        X = self._npz_features(arrays, label)
        n = len(X)
        frame = self._npz_columns(arrays, n, label)
        _no_nan_rows(X, label)
        X = X.astype(np.float32)
        names = [self.features] if isinstance(self.features, str) else list(self.features or [])
        _all_finite(X, names if len(names) == X.shape[1] else [f"{names[0]}[{i}]" for i in range(X.shape[1])],
                    label, False)
        y = binary_target(frame[self.target], self.target, self.positive_label, label, False)
        return AuditDataset(
            name=path.stem, X=X.astype(np.float32), y=y,
            sensitive=sensitive_frame(frame, list(self.sensitive), label, self.bins),
            patient_ids=self._patients(frame[self.patient_id] if self.patient_id else None,
                                       n, label, False),
            extras={c: _extra(frame[c]) for c in self.extras or []},
            meta={"description": f"Arrays {path.name}", "source": str(path),
                  "target": self.target, "positive_label": self.positive_label},
        )

    def _npz_features(self, arrays: dict[str, np.ndarray], label: str) -> np.ndarray:
        """The 2-D feature matrix: the ``features`` array (one row per sample, flattened), or the
        1-D arrays it lists stacked as columns."""
        keys = list(arrays)
        if self.features is None:
            raise DataError(f"{label}: name the feature array with params.features "
                            f"(keys: {keys})")
        if not isinstance(self.features, str):
            return np.column_stack([np.asarray(arrays[k], dtype=np.float64) for k in self.features])
        if self.features not in arrays:
            raise missing_column(label, self.features, "features", keys)
        X = np.asarray(arrays[self.features], dtype=np.float64)
        return X.reshape(len(X), -1)

    def _npz_columns(self, arrays: dict[str, np.ndarray], n: int, label: str) -> pd.DataFrame:
        """The 1-D arrays of length ``n`` as a frame; a named array (other than a feature) of
        another shape is an error."""
        one_d = {k: v for k, v in arrays.items() if v.ndim == 1 and len(v) == n}
        for column, role in self._named_columns():
            if column not in one_d and role != "feature":
                raise DataError(f"{label}: array {column!r} ({role}) has shape "
                                f"{arrays[column].shape}, expected ({n},)")
        return pd.DataFrame(one_d)


# ---------------------------------------------------------------------- shared helpers
def _match_columns(pattern: str, columns: list[str], used: set[str]) -> list[str]:
    """Columns named by ``pattern``: that exact column, else those matching it as a glob (when it
    holds ``*``, ``?`` or ``[``) or as a prefix, less the ``used`` ones."""
    if pattern in columns:
        return [pattern]
    if any(ch in pattern for ch in "*?["):
        return [c for c in columns if fnmatch.fnmatchcase(c, pattern) and c not in used]
    return [c for c in columns if c.startswith(pattern) and c not in used]


def _no_nan_rows(X: np.ndarray, label: str) -> None:
    """Raise a :class:`DataError` naming how many feature rows hold NaN, and the first."""
    if np.isnan(X).any():
        rows = np.flatnonzero(np.isnan(X).any(axis=1))
        raise DataError(f"{label}: features contain NaN in {len(rows)} row(s), first at "
                        f"row {int(rows[0])}")


def _all_finite(X: np.ndarray, names: list[str], label: str, csv_like: bool) -> None:
    """Raise a :class:`DataError` naming the first feature column holding an infinite value (``inf``
    in the file, or a number beyond float32's range), how many, and where the first is."""
    bad = ~np.isfinite(X)
    if not bad.any():
        return
    col = int(np.flatnonzero(bad.any(axis=0))[0])
    row = int(np.flatnonzero(bad[:, col])[0])
    name = names[col] if col < len(names) else f"column {col}"
    raise DataError(f"{label}: feature column {name!r} holds {int(bad[:, col].sum())} infinite value(s) (inf, or "
                    f"beyond float32's range of ±3.4e38), the first at {_where(row, csv_like)}; a feature must be "
                    "a finite number: clean the column or leave it out of params.features")


def _where(position: int, csv_like: bool) -> str:
    return f"CSV line {csv_row(position)}" if csv_like else f"row {position}"


def _no_missing(block: pd.DataFrame, cols: list[str], label: str, csv_like: bool) -> None:
    na = block[cols].isna()
    if na.to_numpy().any():
        bad = [c for c in cols if na[c].any()]
        first = int(np.flatnonzero(na.to_numpy().any(axis=1))[0])
        counts = ", ".join(f"{c!r} ({int(na[c].sum())})" for c in bad[:10])
        raise DataError(f"{label}: feature column(s) {counts} have missing values (NaN), first at "
                        f"{_where(first, csv_like)}; drop or impute them, or leave those columns "
                        "out of params.features")


def binary_target(series: pd.Series, column: str, positive: Any, label: str,
                  csv_like: bool) -> np.ndarray:
    """0/1 target: 1 where ``series`` equals ``positive`` (a value or a list of values) when
    given; else the values must be 0/1 or boolean."""
    _no_missing_target(series, column, label, csv_like)
    values = pd.unique(series)
    shown = sorted(map(str, values))[:10]
    if positive is not None:
        return _positive_hits(series, column, positive, label, shown)
    if pd.api.types.is_bool_dtype(series) or _is_zero_one(series):
        return series.to_numpy().astype(np.int64)
    hint = ("; set params.positive_label to the positive class"
            if len(values) >= 2 else "; a binary target needs both classes")
    raise DataError(f"{label}: target {column!r} is not binary 0/1: found {len(values)} "
                    f"value(s) {shown}{_first_not_binary(series, csv_like)}{hint}")


def _no_missing_target(series: pd.Series, column: str, label: str, csv_like: bool) -> None:
    """Raise a :class:`DataError` naming how many target values are missing, and the first."""
    if series.isna().any():
        first = int(np.flatnonzero(series.isna().to_numpy())[0])
        raise DataError(f"{label}: target {column!r} has {int(series.isna().sum())} missing "
                        f"value(s), first at {_where(first, csv_like)}")


def _positive_hits(series: pd.Series, column: str, positive: Any, label: str,
                   shown: list[str]) -> np.ndarray:
    """0/1 where ``series`` equals ``positive`` (numbers as numbers, else compared as stripped
    text); an error when it never does."""
    wanted = list(positive) if isinstance(positive, list | tuple) else [positive]
    if pd.api.types.is_numeric_dtype(series) and not any(isinstance(w, str) for w in wanted):
        hit = series.isin(wanted).to_numpy()
    else:
        text = series.astype(str).str.strip()
        hit = text.isin([str(w).strip() for w in wanted]).to_numpy()
    if not hit.any():
        raise DataError(f"{label}: positive_label {positive!r} never occurs in target "
                        f"{column!r}; values: {shown}")
    return hit.astype(np.int64)


def _is_zero_one(series: pd.Series) -> bool:
    """``True`` for a numeric series whose values are all 0 or 1."""
    return pd.api.types.is_numeric_dtype(series) and set(np.unique(series.to_numpy())) <= {0, 1}


def _first_not_binary(series: pd.Series, csv_like: bool) -> str:
    """`` (the first other than 0/1 is ... at ...)`` for a numeric target that mixes 0/1 with
    other values; ``""`` otherwise."""
    if not pd.api.types.is_numeric_dtype(series):
        return ""
    other = ~series.isin([0, 1]).to_numpy()
    if not other.any() or other.all():
        return ""
    row = int(np.flatnonzero(other)[0])
    value = series.iloc[row]
    value = value.item() if isinstance(value, np.generic) else value
    return f" (the first other than 0/1 is {value!r} at {_where(row, csv_like)})"


def embedding_matrix(series: pd.Series, column: str, label: str, csv_like: bool) -> np.ndarray:
    """Stack a column of vectors (lists/arrays, or ``"[1, 2]"`` / ``"1 2"`` strings) into 2-D."""
    rows = []
    for i, value in enumerate(series.tolist()):
        if isinstance(value, str):
            text = value.strip().strip("[]").replace(",", " ")
            vec = np.array(text.split(), dtype=np.float64) if text else np.array([])
        elif value is None or (np.ndim(value) == 0 and pd.isna(value)):
            raise DataError(f"{label}: embedding column {column!r} is empty at "
                            f"{_where(i, csv_like)}")
        else:
            vec = np.asarray(value, dtype=np.float64).ravel()
        if rows and len(vec) != len(rows[0]):
            raise DataError(f"{label}: embedding column {column!r} has length {len(vec)} at "
                            f"{_where(i, csv_like)}, expected {len(rows[0])}")
        rows.append(vec)
    X = np.vstack(rows)
    if np.isnan(X).any():
        first = int(np.flatnonzero(np.isnan(X).any(axis=1))[0])
        raise DataError(f"{label}: embedding column {column!r} contains NaN, first at "
                        f"{_where(first, csv_like)}")
    return X


def _extra(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64)
    return series.astype(object).to_numpy(dtype=object)


def write_example(folder: Path) -> tuple[Path, Path]:
    """Write a tiny seeded CSV and NPZ (for ``get_test_params`` and examples); returns paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = 60
    sex = rng.choice(["F", "M"], n)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 4)) + y[:, None]
    frame = pd.DataFrame({"patient": [f"p{i // 2}" for i in range(n)], "sex": sex,
                          "site": rng.choice(["north", "south"], n), "label": y})
    for j in range(X.shape[1]):
        frame[f"f_{j}"] = X[:, j].round(4)
    csv_path, npz_path = folder / "example.csv", folder / "example.npz"
    tmp = folder / f".example.{os.getpid()}.tmp"
    frame.to_csv(tmp, index=False)
    tmp.replace(csv_path)
    with open(tmp, "wb") as fh:
        np.savez(fh, X=X.astype(np.float32), label=y, sex=sex.astype(str))
    tmp.replace(npz_path)
    return csv_path, npz_path
