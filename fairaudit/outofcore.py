"""Features that do not fit in memory: lazy row views of memory-mapped arrays, read in chunks.

A :class:`RowView` stands for ``source[rows]`` of a 2-D array stored in a file (a
:class:`numpy.memmap`, e.g. from ``np.load(path, mmap_mode="r")``) without reading it.  Rows are
read on demand with positioned reads (``os.preadv``) into private buffers: the file's pages go
to the operating system's page cache and never count towards the process's resident memory,
whereas touching the pages of the memory map itself keeps every page read resident (measured in
``benchmarks/bench_out_of_core.py``; ``madvise(MADV_DONTNEED)`` after each chunk also works but
is Linux-only and needs the map's page-aligned address).

``np.asarray(view)`` materialises the rows (numpy indexing semantics, the source dtype);
``view[key]`` reads the indexed rows; :meth:`RowView.take` (used by
:meth:`fairaudit.data.AuditDataset.subset`) stays lazy; :meth:`RowView.iter_chunks` yields
consecutive row blocks as float32 for streaming algorithms.
"""

from __future__ import annotations

import itertools
import mmap
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Rows per chunk when a caller does not say (about 45 MB of 1408-d float32 rows).
DEFAULT_CHUNK_ROWS = 8192
#: Merge two runs of wanted rows when the gap costs less to read than an extra read call.
_GAP_BYTES = 64 * 1024
#: Largest contiguous span read into one temporary buffer.
_SPAN_BYTES = 32 * 1024 * 1024


def _file_layout(source: np.ndarray) -> tuple[str, int] | None:
    """``(path, byte offset of row 0)`` when ``source`` is a C-contiguous memmap of a file."""
    if not isinstance(source, np.memmap) or source.filename is None or not source.flags.c_contiguous:
        return None
    base: Any = source
    while isinstance(base, np.ndarray):
        base = base.base
    if not isinstance(base, mmap.mmap):
        return None
    start = np.frombuffer(base, dtype=np.uint8).ctypes.data  # the map's first byte
    aligned = source.offset - source.offset % mmap.ALLOCATIONGRANULARITY
    return str(source.filename), aligned + (source.ctypes.data - start)


def _reopen(path: str, offset: int, dtype: str, shape: tuple[int, ...], rows: np.ndarray) -> RowView:
    """Unpickle a :class:`RowView` by mapping its file again."""
    source = np.memmap(path, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
    return RowView(source, rows)


def _pread_into(fd: int, out: np.ndarray, offset: int) -> None:
    """Fill the C-contiguous array ``out`` with the bytes of file ``fd`` from ``offset``."""
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:
            raise OSError(f"unexpected end of file at byte {offset + done}")
        done += got


class RowView:
    """The rows ``rows`` of a 2-D ``source`` array, read only when asked for.

    Parameters
    ----------
    source:
        A 2-D array; a C-ordered :class:`numpy.memmap` is read with positioned file reads,
        anything else (an in-memory array, a Fortran-ordered map) by numpy indexing.
    rows:
        Integer positions into ``source`` (any order, repeats allowed); ``None`` = every row.
    """

    __array_priority__ = 1.0

    def __init__(self, source: np.ndarray, rows: np.ndarray | None = None):
        if source.ndim != 2:
            raise ValueError(f"RowView needs a 2-D source array, got shape {source.shape}")
        n = source.shape[0]
        rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"RowView rows out of range for a source with {n} rows")
        self._source = source
        self._rows = rows
        self._layout = _file_layout(source)
        self._sorted = bool(len(rows) < 2 or np.all(rows[1:] > rows[:-1]))

    # ------------------------------------------------------------------ array-like surface
    @property
    def source(self) -> np.ndarray:
        """The underlying (memory-mapped) array."""
        return self._source

    @property
    def rows(self) -> np.ndarray:
        """Row positions in :attr:`source` (read-only copy)."""
        return self._rows.copy()

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self._rows), int(self._source.shape[1]))

    @property
    def dtype(self) -> np.dtype:
        return self._source.dtype

    @property
    def ndim(self) -> int:
        return 2

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:
        """Bytes the rows would take once materialised."""
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        where = self._layout[0] if self._layout else type(self._source).__name__
        return f"RowView({self.shape[0]} x {self.shape[1]} {self.dtype} rows of {where})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy is False:
            raise ValueError("a RowView cannot be turned into an array without reading (copying) its rows")
        return self.read(None, dtype=dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        """Numpy indexing; the selected rows are read (use :meth:`take` for a lazy subset)."""
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = (key[0], key[1:]) if key else (slice(None), ())
        if key is Ellipsis:
            key, rest = slice(None), (Ellipsis, *rest)
        positions = np.arange(len(self), dtype=np.int64)[key]
        block = self.read(np.atleast_1d(positions))
        if np.ndim(positions) == 0:
            block = block[0]
            return block[rest] if rest else block
        return block[(slice(None), *rest)] if rest else block

    def __reduce__(self) -> tuple[Any, ...]:
        if self._layout is None:
            return (RowView, (np.asarray(self._source), self._rows))
        path, offset = self._layout
        return (_reopen, (path, offset, self.dtype.str, self._source.shape, self._rows))

    # ------------------------------------------------------------------ lazy operations
    def take(self, positions: np.ndarray) -> RowView:
        """A lazy view of ``self[positions]`` (integer positions or a boolean mask)."""
        positions = np.asarray(positions)
        if positions.dtype == bool:
            if positions.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {positions.shape} for {len(self)} rows")
            positions = np.flatnonzero(positions)
        return RowView(self._source, self._rows[positions.astype(np.int64, copy=False)])

    def read(self, positions: np.ndarray | None = None, *, dtype: Any = None) -> np.ndarray:
        """The rows at ``positions`` of this view (all when ``None``) as a new array."""
        src = self._rows if positions is None else self._rows[np.asarray(positions, dtype=np.int64)]
        if (self._sorted and positions is None) or len(src) < 2 or bool(np.all(src[1:] > src[:-1])):
            block = self._read_sorted_unique(src)
        else:
            uniq, inverse = np.unique(src, return_inverse=True)
            block = self._read_sorted_unique(uniq)[inverse]
        return block if dtype is None else block.astype(dtype, copy=False)

    def iter_chunks(self, chunk_rows: int = DEFAULT_CHUNK_ROWS, dtype: Any = np.float32) -> Iterator[np.ndarray]:
        """Consecutive blocks of at most ``chunk_rows`` rows, in view order, as ``dtype``."""
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        for start in range(0, len(self), chunk_rows):
            yield self.read(np.arange(start, min(start + chunk_rows, len(self))), dtype=dtype)

    # ------------------------------------------------------------------ reading
    def _read_sorted_unique(self, src: np.ndarray) -> np.ndarray:
        """Source rows ``src`` (strictly increasing) as an array of the source dtype."""
        d = self._source.shape[1]
        if self._layout is None:
            return np.array(self._source[src], copy=True).reshape(len(src), d)
        out = np.empty((len(src), d), dtype=self.dtype)
        if not len(src):
            return out
        path, offset = self._layout
        row_bytes = d * self.dtype.itemsize
        max_gap = max(1, _GAP_BYTES // max(row_bytes, 1))
        max_span = max(1, _SPAN_BYTES // max(row_bytes, 1))
        fd = os.open(path, os.O_RDONLY)
        try:
            for lo, hi in _runs(src, max_gap, max_span):
                first, last = int(src[lo]), int(src[hi - 1])
                if last - first + 1 == hi - lo:  # contiguous: read straight into the output
                    _pread_into(fd, out[lo:hi], offset + first * row_bytes)
                else:
                    span = np.empty((last - first + 1, d), dtype=self.dtype)
                    _pread_into(fd, span, offset + first * row_bytes)
                    np.take(span, src[lo:hi] - first, axis=0, out=out[lo:hi])
        finally:
            os.close(fd)
        return out


def _runs(src: np.ndarray, max_gap: int, max_span: int) -> Iterator[tuple[int, int]]:
    """``[lo, hi)`` index ranges of ``src`` (increasing) read as one span each.

    Neighbouring rows at most ``max_gap`` apart share a span; a span covers at most ``max_span``
    rows (a longer run is cut).
    """
    breaks = np.flatnonzero(np.diff(src) > max_gap) + 1
    bounds = np.concatenate([[0], breaks, [len(src)]])
    for lo, hi in itertools.pairwise(bounds.tolist()):
        start = lo
        while start < hi:
            limit = src[start] + max_span
            stop = start + int(np.searchsorted(src[start:hi], limit, side="left"))
            yield start, max(stop, start + 1)
            start = max(stop, start + 1)


# ---------------------------------------------------------------------- helpers for callers
def is_lazy(X: Any) -> bool:
    """Whether ``X`` is a lazy or memory-mapped feature matrix (a :class:`RowView` or memmap)."""
    return isinstance(X, RowView | np.memmap)


def subset_rows(X: np.ndarray | RowView, rows: np.ndarray) -> np.ndarray | RowView:
    """``X[rows]``: lazy for memory-mapped or lazy ``X``, numpy indexing otherwise."""
    if isinstance(X, RowView):
        return X.take(rows)
    if isinstance(X, np.memmap) and X.ndim == 2:
        return RowView(X).take(rows)
    return X[rows]


def read_rows(X: np.ndarray | RowView, rows: np.ndarray | None = None, dtype: Any = np.float32) -> np.ndarray:
    """Rows ``rows`` (all when ``None``) of ``X`` as an in-memory 2-D ``dtype`` array."""
    if isinstance(X, RowView):
        block = X.read(rows, dtype=dtype)
    else:
        block = np.asarray(X if rows is None else X[np.asarray(rows)], dtype=dtype)
    return block.reshape(len(block), -1)


def iter_row_chunks(X: np.ndarray | RowView, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                    dtype: Any = np.float32) -> Iterator[np.ndarray]:
    """Consecutive row blocks of ``X`` (lazy or in memory) as 2-D ``dtype`` arrays."""
    if isinstance(X, np.memmap) and X.ndim == 2:
        X = RowView(X)
    if isinstance(X, RowView):
        yield from X.iter_chunks(chunk_rows, dtype=dtype)
        return
    for start in range(0, len(X), chunk_rows):
        yield read_rows(X[start:start + chunk_rows], dtype=dtype)


def update_hash(h: Any, X: np.ndarray | RowView, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
    """Feed the C-ordered bytes of ``X`` to hashlib object ``h``, chunk by chunk for lazy ``X``.

    Gives the same digest as ``h.update(np.ascontiguousarray(np.asarray(X)).tobytes())``.
    """
    from fairaudit.lazy_images import is_lazy_images

    if is_lazy_images(X):  # streamed images: file fingerprints, no decoding
        X.update_hash(h)  # type: ignore[union-attr]
        return
    if isinstance(X, np.memmap) and X.ndim == 2:
        X = RowView(X)
    if isinstance(X, RowView):
        for block in X.iter_chunks(chunk_rows, dtype=None):
            h.update(memoryview(block).cast("B"))
        return
    if isinstance(X, np.memmap):  # other shapes: slices along the first axis
        for start in range(0, len(X), chunk_rows):
            h.update(np.ascontiguousarray(X[start:start + chunk_rows]).tobytes())
        return
    h.update(np.ascontiguousarray(X).tobytes())
