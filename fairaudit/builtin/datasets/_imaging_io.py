"""Image decoding and resizing for the image loaders (Pillow), and the metadata-CSV plumbing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairaudit.builtin.datasets._groups import check_bins, sensitive_frame
from fairaudit.builtin.datasets._tabular_io import (
    csv_row,
    missing_column,
    read_header,
    read_table,
)
from fairaudit.builtin.datasets.table import binary_target
from fairaudit.errors import DataError

ResizeMode = Literal["squash", "crop", "pad"]


def to_array(image: Any, size: int | None, *, grayscale: bool = True,
             resize: ResizeMode = "squash") -> np.ndarray:
    """A PIL image as float32 ``(C, size, size)`` in ``[0, 1]`` (C = 1 grey, 3 RGB).

    High-bit-depth modes (``I;16``, ``I``, ``F``) are min-max scaled to 8 bits first; palette,
    alpha and CMYK images are converted.  ``size=None`` keeps the image's own ``(H, W)``.
    """
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        image = Image.fromarray((arr * 255.0).round().astype(np.uint8), mode="L")
    image = image.convert("L" if grayscale else "RGB")
    if size is not None:
        image = fit_square(image, size, resize)
    arr = np.asarray(image, dtype=np.float32) / 255.0
    return arr[None] if grayscale else arr.transpose(2, 0, 1)


def float_to_array(values: np.ndarray, size: int | None, *, grayscale: bool = True,
                   resize: ResizeMode = "squash") -> np.ndarray:
    """Intensities in ``[0, 1]`` (``(H, W)`` grey or ``(H, W, 3)`` RGB, e.g. a windowed DICOM) as
    float32 ``(C, size, size)``, resized in floating point (no 8-bit rounding).  RGB becomes grey
    with Pillow's weights (ITU-R 601: 0.299 R + 0.587 G + 0.114 B); grey is repeated for RGB."""
    from PIL import Image

    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim == 3 and grayscale:
        arr = arr @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    planes = [arr] if arr.ndim == 2 else [arr[..., c] for c in range(3)]
    if size is not None:
        planes = [np.asarray(fit_square(Image.fromarray(np.ascontiguousarray(p)), size, resize),
                             dtype=np.float32) for p in planes]
    if not grayscale and len(planes) == 1:
        planes = planes * 3
    return np.clip(np.stack(planes), 0.0, 1.0)


def resize_mask(mask: np.ndarray, size: int, resize: ResizeMode = "squash") -> np.ndarray:
    """A 0/1 mask resized with nearest-neighbour (same geometry as :func:`to_array`)."""
    from PIL import Image

    image = Image.fromarray((np.asarray(mask) > 0).astype(np.uint8) * 255, mode="L")
    image = fit_square(image, size, resize, nearest=True)
    return (np.asarray(image) > 127).astype(np.uint8)


def fit_square(image: Any, size: int, resize: ResizeMode, nearest: bool = False) -> Any:
    """A PIL image made square (``squash``/``crop``/``pad``) and resized to ``size``."""
    from PIL import Image

    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    w, h = image.size
    if resize == "crop" and w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
    elif resize == "pad" and w != h:
        side = max(w, h)
        canvas = Image.new(image.mode, (side, side), 0)
        canvas.paste(image, ((side - w) // 2, (side - h) // 2))
        image = canvas
    if image.size != (size, size):
        image = image.resize((size, size), method)
    return image


@dataclass
class Labels:
    """Per-row target, groups, patients and extras read from a metadata table."""

    frame: pd.DataFrame  # the kept rows; index = 0-based data row in the CSV
    y: np.ndarray
    sensitive: pd.DataFrame
    patient_ids: np.ndarray
    extras: dict[str, np.ndarray]
    n_rows: int = 0  # data rows in the CSV before the filters


def metadata_columns(target: str, sensitive: Sequence[str], patient_id: str | None,
                     extras: Sequence[str] | None, include: Mapping[str, Any] | None,
                     exclude: Mapping[str, Any] | None = None,
                     more: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    named = [(target, "target"), *((c, "sensitive attribute") for c in sensitive)]
    if patient_id:
        named.append((patient_id, "patient_id"))
    named += [(c, "extra column") for c in extras or []]
    named += [(c, "include filter") for c in include or {}]
    named += [(c, "exclude filter") for c in exclude or {}]
    return named + list(more)


def check_metadata(path: Path, named: list[tuple[str, str]], sep: str = ",",
                   encoding: str = "utf-8") -> list[str]:
    """Problems with a metadata CSV's header (file missing, columns absent); reads one line."""
    try:
        columns = read_header(path, "csv", sep=sep, encoding=encoding)
    except DataError as exc:
        return [str(exc)]
    return [str(missing_column(str(path), c, role, columns)) for c, role in named
            if c not in columns]


def read_labels(path: Path, named: list[tuple[str, str]], *, target: str, positive_label: Any,
                sensitive: Sequence[str], patient_id: str | None, extras: Sequence[str] | None,
                include: Mapping[str, Any] | None, na_values: list[str] | None,
                exclude: Mapping[str, Any] | None = None, sep: str = ",",
                encoding: str = "utf-8", bins: Mapping[str, Any] | None = None) -> Labels:
    """Read the metadata CSV, filter rows (``include``/``exclude``), derive target and groups
    (``bins`` cut continuous sensitive columns; target and sensitive cells read literally)."""
    problems = [f"dataset.params.{p}" for p in check_bins(bins, sensitive)]
    problems += check_metadata(path, named, sep, encoding)
    if problems:
        raise DataError(problems[0])
    frame = read_table(path, "csv", sep=sep, na_values=na_values, encoding=encoding,
                       literal=[target, *sensitive])
    n_rows = len(frame)
    label = str(path)
    frame = _filter_rows(frame, include, exclude, label)
    # row numbers in errors are CSV lines as long as no row was filtered out
    y = binary_target(frame[target].reset_index(drop=True), target, positive_label,
                      label, csv_like=not (include or exclude))
    pids = _patient_ids(frame, patient_id, label)
    extra_arrays = {c: _extra_array(frame[c]) for c in extras or []}
    groups = sensitive_frame(frame.reset_index(drop=True), list(sensitive), label, bins)
    return Labels(frame=frame, y=y, sensitive=groups, patient_ids=pids, extras=extra_arrays,
                  n_rows=n_rows)


def _filter_rows(frame: pd.DataFrame, include: Mapping[str, Any] | None,
                exclude: Mapping[str, Any] | None, label: str) -> pd.DataFrame:
    """The rows whose ``include`` columns hold a listed value and whose ``exclude`` columns do
    not (compared as text); an error when none is left."""
    for rule, keep_listed in ((include, True), (exclude, False)):
        for column, listed in (rule or {}).items():
            values = listed if isinstance(listed, list | tuple) else [listed]
            hit = frame[column].astype(str).isin([str(v) for v in values]).to_numpy()
            frame = frame[hit if keep_listed else ~hit]
    if frame.empty:
        raise DataError(f"{label}: no row is left after the filters include="
                        f"{dict(include or {})}, exclude={dict(exclude or {})}")
    return frame


def _patient_ids(frame: pd.DataFrame, patient_id: str | None, label: str) -> np.ndarray:
    """Patient of each kept row: the ``patient_id`` column (a missing cell is an error naming its
    CSV line), else ``R<row>`` (one patient per row)."""
    if not patient_id:
        return np.asarray([f"R{i}" for i in frame.index], dtype=object)
    col = frame[patient_id]
    if col.isna().any():
        first = int(frame.index[col.isna().to_numpy()][0])
        raise DataError(f"{label}: patient_id {patient_id!r} is missing at CSV line "
                        f"{csv_row(first)}")
    return col.astype(str).to_numpy(dtype=object)


def _extra_array(series: pd.Series) -> np.ndarray:
    """An extra column as float64 when numeric, else as Python objects."""
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64)
    return series.astype(object).to_numpy(dtype=object)
