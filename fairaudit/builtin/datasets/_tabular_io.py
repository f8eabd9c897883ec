"""Reading tables (CSV, CSV in a zip, Parquet, NPZ): cheap headers and full frames, clear errors."""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from fairaudit.errors import DataError

FORMATS = ("csv", "parquet", "npz")

#: The strings pandas' ``read_csv`` reads as missing by default (its documented list).  Columns read
#: *literally* (target and sensitive attributes) keep them as values; other columns still read
#: them as missing.
DEFAULT_NA = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                        "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


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


def check_encoding(encoding: str) -> str:
    """``encoding`` if Python knows it (``utf-8`` reads a BOM too); else a :class:`DataError`."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r} (params.encoding); use e.g. utf-8, cp1252, "
                        "latin-1 or utf-16") from None
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _raw_stream(path: Path, member: str | None) -> tuple[BinaryIO, str]:
    """The undecoded bytes of the CSV (inside a zip or not) and a label naming it in errors."""
    if zipfile.is_zipfile(path):
        name = zip_member(path, member)
        zf = zipfile.ZipFile(path)
        return zf.open(name), f"{path}!{name}"
    return open(path, "rb"), str(path)


def _text_stream(path: Path, member: str | None, encoding: str = "utf-8") -> tuple[Any, str]:
    """A text stream of the CSV (inside a zip or not) and a label naming it in errors."""
    raw, label = _raw_stream(path, member)
    return io.TextIOWrapper(raw, encoding=check_encoding(encoding), newline=""), label


def _first_undecodable(raw: BinaryIO, encoding: str) -> tuple[int, int, int, int, str] | None:
    """(byte offset, line, column, byte, reason) of the first byte ``encoding`` cannot decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, line, line_start = 0, 1, 0
    while True:
        chunk = raw.read(1 << 20)
        try:
            decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            pending = len(exc.object) - len(chunk)
            bad = offset - pending + exc.start
            before = chunk[: max(0, bad - offset)]
            if b"\n" in before:
                line += before.count(b"\n")
                line_start = offset + before.rfind(b"\n") + 1
            value = exc.object[exc.start] if exc.start < len(exc.object) else 0
            return bad, line, bad - line_start + 1, value, exc.reason
        if not chunk:
            return None
        if b"\n" in chunk:
            line += chunk.count(b"\n")
            line_start = offset + chunk.rfind(b"\n") + 1
        offset += len(chunk)


def _guess_encoding(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


def decode_error(path: Path, member: str | None, encoding: str) -> DataError:
    """A :class:`DataError` naming the file, byte offset, line and column of the first byte
    that ``encoding`` cannot decode, and the ``encoding:`` parameter that would read it."""
    codec = check_encoding(encoding)
    raw, label = _raw_stream(path, member)
    with raw:
        head = raw.read(1 << 24)
        if b"\x00" in head[:4096] and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return DataError(f"{label}: contains NUL bytes: a binary file, not a text CSV")
        raw.seek(0)
        found = _first_undecodable(raw, codec)
    shown = "UTF-8" if codec == "utf-8-sig" else encoding
    if found is None:  # pragma: no cover - the decoder failed before, so it fails here too
        return DataError(f"{label}: not valid {shown} text; set params.encoding (e.g. cp1252)")
    offset, line, col, value, reason = found
    guess = _guess_encoding(head)
    names = {"cp1252": "Windows-1252 (Excel on Windows)", "latin-1": "Latin-1",
             "utf-16": "UTF-16 (it starts with a UTF-16 byte-order mark)"}
    return DataError(f"{label}: not valid {shown} text: byte 0x{value:02X} at byte offset {offset} "
                     f"(line {line}, column {col}) cannot be decoded ({reason}). If the file is "
                     f"{names[guess]}, set `encoding: {guess}` in dataset.params, or re-save it as UTF-8")


def read_header(path: Path, fmt: str, *, member: str | None = None, sep: str = ",",
                encoding: str = "utf-8") -> list[str]:
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
    stream, label = _text_stream(path, member, encoding)
    with stream:
        reader = csv.reader(stream, delimiter=sep)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{label} is empty (no header line)") from None
        except UnicodeDecodeError:
            raise decode_error(path, member, encoding) from None
        except csv.Error as exc:
            if "NUL" in str(exc):
                raise DataError(f"{label}: line {reader.line_num} contains NUL bytes: a binary "
                                "file, not a text CSV") from None
            raise DataError(f"{label}: line {reader.line_num}: not a readable CSV ({exc})") from None
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
    encoding: str = "utf-8",
    literal: Sequence[str] = (),
) -> pd.DataFrame:
    """The whole table (only ``columns`` where given) as a DataFrame; NPZ 1-D arrays as columns.

    Column names are stripped of blanks; a CSV row with more fields than the header is an error
    naming its line (not a silent shift of the columns).  In the CSV columns named in ``literal``
    only an empty cell (or one of ``na_values``) is missing: ``NA``, ``None``, ``null`` ... stay
    values there (a group called ``"None"`` is a group); every other column reads pandas'
    :data:`DEFAULT_NA` strings as missing, as usual."""
    require_file(path)
    if fmt == "parquet":
        return _read_parquet(path, columns)
    if fmt == "npz":
        raise AssertionError("read NPZ files with read_npz")
    frame, label = _read_csv(path, member=member, sep=sep, na_values=na_values, encoding=encoding,
                             literal=bool(literal))
    frame.columns = [str(c).strip() for c in frame.columns]
    if columns is not None:
        frame = frame[list(columns)]
    if frame.empty:
        raise DataError(f"{label} has a header but no data rows")
    return _default_missing_outside(frame, literal) if literal else frame


def _read_parquet(path: Path, columns: list[str] | None) -> pd.DataFrame:
    """A Parquet file (only ``columns`` where given); an unreadable one is a :class:`DataError`."""
    try:
        return pd.read_parquet(path, columns=columns)
    except Exception as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc


def _read_csv(path: Path, *, member: str | None, sep: str, na_values: list[str] | None,
              encoding: str, literal: bool) -> tuple[pd.DataFrame, str]:
    """The CSV as read by pandas, and its label for errors.  With ``literal`` only an empty cell
    (or one of ``na_values``) is missing; a row with extra fields or an undecodable byte is a
    :class:`DataError` naming where."""
    stream, label = _text_stream(path, member, encoding)
    with stream, warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(stream, sep=sep, na_values=["", *list(na_values or [])] if literal else na_values,
                                keep_default_na=not literal, index_col=False, skipinitialspace=True,
                                low_memory=False)
        except pd.errors.EmptyDataError:
            raise DataError(f"{label} is empty") from None
        except UnicodeDecodeError:
            raise decode_error(path, member, encoding) from None
        except pd.errors.ParserWarning:
            raise DataError(f"{label}: CSV line 2 has more fields than the header line; is a "
                            f"value holding the separator {sep!r} without quotes?") from None
        except pd.errors.ParserError as exc:
            raise DataError(f"{label}: {_parser_message(str(exc), sep)}") from None
    return frame, label


def _default_missing_outside(frame: pd.DataFrame, literal: Sequence[str]) -> pd.DataFrame:
    """``frame`` with :func:`default_missing` applied to its non-numeric columns not in ``literal``."""
    keep = set(literal)
    for column in frame.columns:
        if column not in keep and not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = default_missing(frame[column])
    return frame


def default_missing(series: pd.Series) -> pd.Series:
    """``series`` with pandas' :data:`DEFAULT_NA` strings made missing, and numeric if all the rest
    are numbers (what ``read_csv`` does for a column by default)."""
    hit = series.isin(DEFAULT_NA).to_numpy()
    if not hit.any():
        return series
    series = series.astype(object).where(~hit)
    try:
        return pd.to_numeric(series)
    except (ValueError, TypeError):
        return series


def _parser_message(text: str, sep: str) -> str:
    text = " ".join(text.split())
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if found:
        want, line, saw = found.groups()
        return (f"CSV line {line} has {saw} fields but the header has {want}; is a value holding "
                f"the separator {sep!r} without quotes?")
    return f"cannot parse the CSV ({text})"


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an NPZ; arrays of Python objects (pickles) are refused, never unpickled."""
    require_file(path)
    key = None
    try:
        with np.load(path, allow_pickle=False) as npz:
            out = {}
            for key in npz.files:
                out[key] = npz[key]
            return out
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path}: array {key!r} holds Python objects (a pickle), which fairaudit "
                            "refuses to load because unpickling can run code; save plain numeric or "
                            "string arrays") from None
        raise DataError(f"{path}: not a readable NPZ file ({exc})") from exc
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
