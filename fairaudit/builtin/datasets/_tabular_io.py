"""Reading tables (CSV, CSV in a zip, Parquet, NPZ): cheap headers and full frames, clear errors."""

from __future__ import annotations

import csv
import difflib
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairaudit.errors import DataError

FORMATS = ("csv", "parquet", "npz")


def detect_format(path: Path, fmt: str = "auto") -> str:
    """``"csv"``, ``"parquet"`` or ``"npz"`` from ``fmt`` or the file suffix (``.zip`` = CSV)."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise DataError(f"{path}: unknown format {fmt!r}; use one of {list(FORMATS)}")
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    last = suffixes[-1] if suffixes else ""
    if last in (".parquet", ".pq"):
        return "parquet"
    if last == ".npz":
        return "npz"
    if last in (".csv", ".tsv", ".txt", ".zip", ".gz", ".bz2", ".xz"):
        return "csv"
    raise DataError(f"{path}: cannot tell the format from the suffix {last!r}; "
                    "set params.format to csv, parquet or npz")


def require_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder, expected a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes)")


def zip_member(path: Path, member: str | None) -> str:
    """The CSV inside zip ``path``: ``member`` (full name or base name) or the only CSV."""
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    csvs = [n for n in names if n.lower().endswith((".csv", ".tsv", ".txt"))]
    if member is not None:
        hits = [n for n in names if n == member or Path(n).name == member]
        if len(hits) != 1:
            raise DataError(f"{path}: no single member {member!r} in the zip; members: {names}")
        return hits[0]
    if len(csvs) != 1:
        raise DataError(f"{path}: the zip holds {len(csvs)} CSV files {csvs}; "
                        "name the one to read with params.member")
    return csvs[0]


def _text_stream(path: Path, member: str | None) -> tuple[Any, str]:
    """A text stream of the CSV (inside a zip or not) and a label naming it in errors."""
    if zipfile.is_zipfile(path):
        name = zip_member(path, member)
        zf = zipfile.ZipFile(path)
        return io.TextIOWrapper(zf.open(name), encoding="utf-8-sig", newline=""), f"{path}!{name}"
    return open(path, encoding="utf-8-sig", newline=""), str(path)


def read_header(path: Path, fmt: str, *, member: str | None = None, sep: str = ",") -> list[str]:
    """Column names without reading the data (CSV first line, Parquet schema, NPZ keys)."""
    require_file(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    if fmt == "npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                return list(npz.files)
        except Exception as exc:
            raise DataError(f"{path}: not a readable NPZ file ({exc})") from exc
    stream, label = _text_stream(path, member)
    with stream:
        try:
            header = next(csv.reader(stream, delimiter=sep))
        except StopIteration:
            raise DataError(f"{label} is empty (no header line)") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{label}: not a readable text CSV ({exc})") from exc
    if not any(h.strip() for h in header):
        raise DataError(f"{label} has an empty header line")
    return [h.strip() for h in header]


def read_table(
    path: Path,
    fmt: str,
    *,
    member: str | None = None,
    sep: str = ",",
    na_values: list[str] | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """The whole table (only ``columns`` where given) as a DataFrame; NPZ 1-D arrays as columns."""
    require_file(path)
    if fmt == "parquet":
        return pd.read_parquet(path, columns=columns)
    if fmt == "npz":
        raise AssertionError("read NPZ files with read_npz")
    stream, label = _text_stream(path, member)
    with stream:
        try:
            frame = pd.read_csv(stream, sep=sep, na_values=na_values, usecols=columns,
                                skipinitialspace=True, low_memory=False)
        except pd.errors.EmptyDataError:
            raise DataError(f"{label} is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{label}: cannot parse the CSV ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{label} has a header but no data rows")
    return frame


def read_npz(path: Path) -> dict[str, np.ndarray]:
    require_file(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise DataError(f"{path}: not a readable NPZ file ({exc})") from exc


def missing_column(label: str, column: str, role: str, available: list[str]) -> DataError:
    """A ``DataError`` for an absent column, with 'did you mean' and the available columns."""
    close = difflib.get_close_matches(column, available, n=3, cutoff=0.6)
    lowered = [c for c in available if c.lower() == column.lower() and c not in close]
    close = lowered + close
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    shown = ", ".join(available[:30]) + (" ..." if len(available) > 30 else "")
    return DataError(f"{label}: no column {column!r} ({role}).{hint} Columns: {shown}")


def csv_row(position: int) -> int:
    """1-based line number in a CSV (with header) of data row ``position`` (0-based)."""
    return position + 2
