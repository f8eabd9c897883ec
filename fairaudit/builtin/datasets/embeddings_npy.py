"""``embeddings_npy``: a 2-D ``.npy`` of embeddings, memory-mapped (never loaded whole), with a
CSV/Parquet metadata table holding the target, sensitive attributes and patient ids row by row."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairaudit.base import BaseDatasetLoader
from fairaudit.builtin.datasets._groups import Bins, check_bins
from fairaudit.builtin.datasets._tabular_io import detect_format, missing_column, read_header, read_table, require_file
from fairaudit.builtin.datasets.table import _extra, binary_target, sensitive_frame
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError
from fairaudit.outofcore import RowView

#: Feature dtypes the loader accepts (read as float32 downstream).
FLOAT_KINDS = ("float16", "float32", "float64")


class EmbeddingsNpyDataset(BaseDatasetLoader):
    """Embeddings too large for memory: ``features`` ``.npy`` (memory-mapped) + ``metadata`` table.

    Row ``i`` of the metadata describes row ``i`` of the embeddings.  The array stays on disk:
    splits are lazy row views, the ``logistic`` model trains on it by streaming and the probe
    metrics read at most their ``max_rows`` rows.

    Parameters
    ----------
    features:
        A 2-D float32/float16 (or float64) ``.npy`` file, C order (write it with ``np.save`` or
        chunk by chunk with ``np.lib.format.open_memmap``); relative to the spec's folder.
    metadata:
        CSV (optionally compressed or zipped) or Parquet table with one row per embedding.
    target:
        Target column; 0/1 (or boolean) unless ``positive_label``.
    sensitive:
        Sensitive-attribute columns; a missing (empty) cell forms the group ``"(missing)"``
        (warned); ``NA``, ``None``, ``null`` are values here (unless in ``na_values``).
    bins:
        Groups of continuous sensitive columns, as for ``table``: ``{age: [0, 50, 65, 120]}``
        or ``{age: {edges: [...], labels: [...]}}``.
    patient_id:
        Patient column (default: one patient per row).
    positive_label:
        Target value(s) counted as positive; every other value is negative.
    extras:
        Further metadata columns kept per row (e.g. continuous age).
    format:
        Metadata format: ``auto`` (from the suffix), ``csv`` or ``parquet``.
    sep, na_values:
        CSV delimiter and extra strings read as missing.
    encoding:
        Text encoding of a CSV metadata file (default ``utf-8``; e.g. ``cp1252``).
    check_finite:
        Scan the embeddings once (chunk by chunk) and reject NaN/inf, naming the first bad row.
    """

    name = "embeddings_npy"
    modality = "features"
    description = ("Embeddings from a memory-mapped 2-D .npy file (never loaded whole) with a "
                   "CSV/Parquet metadata table of target, sensitive attributes and patient ids.")

    def __init__(
        self,
        *,
        features: str,
        metadata: str,
        target: str,
        sensitive: list[str],
        patient_id: str | None = None,
        positive_label: str | int | float | bool | list[str | int | float] | None = None,
        extras: list[str] | None = None,
        format: Literal["auto", "csv", "parquet"] = "auto",
        sep: str = ",",
        na_values: list[str] | None = None,
        encoding: str = "utf-8",
        check_finite: bool = True,
        bins: Bins | None = None,
    ):
        self.features = features
        self.metadata = metadata
        self.target = target
        self.sensitive = sensitive
        self.patient_id = patient_id
        self.positive_label = positive_label
        self.extras = extras
        self.format = format
        self.sep = sep
        self.na_values = na_values
        self.encoding = encoding
        self.check_finite = check_finite
        self.bins = bins

    # ------------------------------------------------------------------ contract
    def resolve(self, base_dir: Path) -> EmbeddingsNpyDataset:
        self.features = str(_absolute(self.features, base_dir))
        self.metadata = str(_absolute(self.metadata, base_dir))
        return self

    def check(self, base_dir: Path) -> list[str]:
        problems: list[str] = check_bins(self.bins, self.sensitive)
        features, metadata = _absolute(self.features, base_dir), _absolute(self.metadata, base_dir)
        n_rows = None
        try:
            n_rows = npy_shape(features)[0]
        except DataError as exc:
            problems.append(str(exc))
        try:
            fmt = self._format(metadata)
            columns = read_header(metadata, fmt, sep=self.sep, encoding=self.encoding)
            problems += [str(missing_column(str(metadata), c, role, columns))
                         for c, role in self._named_columns() if c not in columns]
            if fmt == "parquet" and n_rows is not None:
                _same_length(features, n_rows, metadata, _parquet_rows(metadata))
        except DataError as exc:
            problems.append(str(exc))
        return problems

    def load(self) -> AuditDataset:
        problems = check_bins(self.bins, self.sensitive)
        if problems:
            raise DataError(f"{self.name}: dataset.params.{problems[0]}")
        features, metadata = _absolute(self.features, Path.cwd()), _absolute(self.metadata, Path.cwd())
        X = open_embeddings(features)
        frame = self._metadata_frame(metadata)
        _same_length(features, len(X), metadata, len(frame))
        if self.check_finite:
            _check_finite(X, features)
        label = str(metadata)
        csv_like = self._format(metadata) == "csv"
        return AuditDataset(
            name=features.stem,
            X=X,
            y=binary_target(frame[self.target], self.target, self.positive_label, label, csv_like),
            sensitive=sensitive_frame(frame, list(self.sensitive), label, self.bins),
            patient_ids=patient_ids(frame[self.patient_id] if self.patient_id else None, len(frame), label),
            extras={c: _extra(frame[c]) for c in self.extras or []},
            meta={"description": f"Embeddings {features.name} ({X.shape[0]} x {X.shape[1]} {X.dtype}, "
                                 f"memory-mapped) with metadata {metadata.name}",
                  "source": str(features), "metadata": str(metadata), "target": self.target,
                  "positive_label": self.positive_label, "out_of_core": True},
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        folder = Path(tempfile.gettempdir()) / "fairaudit-embeddings-npy-example"
        npy, csv = write_example(folder)
        return [{"features": str(npy), "metadata": str(csv), "target": "label", "sensitive": ["sex"],
                 "patient_id": "patient"}]

    # ------------------------------------------------------------------ pieces
    def _format(self, metadata: Path) -> str:
        fmt = detect_format(metadata, self.format)
        if fmt == "npz":
            raise DataError(f"{metadata}: the metadata must be a CSV or Parquet table, not NPZ")
        return fmt

    def _named_columns(self) -> list[tuple[str, str]]:
        named = [(self.target, "target")]
        named += [(c, "sensitive attribute") for c in self.sensitive]
        if self.patient_id:
            named.append((self.patient_id, "patient_id"))
        named += [(c, "extra column") for c in self.extras or []]
        return named

    def _metadata_frame(self, metadata: Path) -> pd.DataFrame:
        """The named metadata columns (only those are read)."""
        fmt = self._format(metadata)
        columns = read_header(metadata, fmt, sep=self.sep, encoding=self.encoding)
        for column, role in self._named_columns():
            if column not in columns:
                raise missing_column(str(metadata), column, role, columns)
        wanted = list(dict.fromkeys(c for c, _ in self._named_columns()))
        frame = read_table(metadata, fmt, sep=self.sep, na_values=self.na_values, columns=wanted,
                           encoding=self.encoding, literal=[self.target, *self.sensitive])
        return frame.reset_index(drop=True)


# ---------------------------------------------------------------------- helpers
def _absolute(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (Path(base_dir) / p).resolve()


def npy_shape(path: Path) -> tuple[int, ...]:
    """Shape of the array in ``.npy`` file ``path`` from its header (checked: 2-D, floating)."""
    require_file(path)
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _fortran, dtype = read(fh)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from exc
    _check_array(path, tuple(shape), np.dtype(dtype))
    return tuple(shape)


def _check_array(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if len(shape) != 2:
        raise DataError(f"{path}: embeddings must be a 2-D array (rows x dimensions), got shape {shape}; "
                        "reshape to (n, -1) before saving")
    if dtype.name not in FLOAT_KINDS:
        raise DataError(f"{path}: embeddings must be floating point (float32, float16 or float64), "
                        f"got dtype {dtype}")
    if shape[0] == 0 or shape[1] == 0:
        raise DataError(f"{path}: the embeddings array is empty (shape {shape})")


def open_embeddings(path: Path) -> np.memmap:
    """The ``.npy`` at ``path`` memory-mapped read-only (nothing is read yet)."""
    npy_shape(path)
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot memory-map the .npy file ({exc})") from exc
    if not X.flags.c_contiguous:
        warnings.warn(f"{path}: the array is stored in Fortran order; reading rows touches the whole file "
                      "(save it in C order for out-of-core audits)", UserWarning, stacklevel=2)
    return X


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows)
    except Exception as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc


def _same_length(features: Path, n_features: int, metadata: Path, n_metadata: int) -> None:
    if n_features != n_metadata:
        raise DataError(f"row counts differ: embeddings {features} have {n_features} rows but metadata "
                        f"{metadata} has {n_metadata} rows; row i of the metadata must describe row i of "
                        "the embeddings")


def _check_finite(X: np.ndarray, path: Path, chunk_rows: int = 8192) -> None:
    """Reject NaN/inf embeddings (one chunked pass), naming the first bad row."""
    for start, block in zip(range(0, len(X), chunk_rows), RowView(X).iter_chunks(chunk_rows, dtype=None),
                            strict=True):
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            first = start + int(np.flatnonzero(~finite)[0])
            raise DataError(f"{path}: embeddings contain NaN/inf, first at row {first} (0-based)")


def patient_ids(column: pd.Series | None, n: int, label: str) -> np.ndarray:
    """Patient id per row as strings (one patient per row without a column)."""
    if column is None:
        return np.char.add("R", np.arange(n).astype(str)).astype(object)
    if column.isna().any():
        first = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise DataError(f"{label}: patient_id column {column.name!r} has {int(column.isna().sum())} "
                        f"missing value(s), first at row {first} (0-based)")
    return column.astype(str).to_numpy(dtype=object)


def write_example(folder: Path, n: int = 80, dim: int = 8) -> tuple[Path, Path]:
    """Write a tiny seeded ``.npy`` + CSV pair (sex signal in dimension 0); returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sex = rng.choice(["F", "M"], n)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    X[:, 0] += 2.0 * (sex == "M")
    X[:, 1] += 1.5 * y
    frame = pd.DataFrame({"patient": [f"p{i // 2}" for i in range(n)], "sex": sex, "label": y})
    npy, csv = folder / "example.npy", folder / "example.csv"
    tmp = folder / f".example.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        np.save(fh, X)
    tmp.replace(npy)
    frame.to_csv(tmp, index=False)
    tmp.replace(csv)
    return npy, csv
