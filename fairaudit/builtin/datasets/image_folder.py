"""``image_folder``: a folder of images plus a metadata CSV (CheXpert / MIMIC-CXR style)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fairaudit.base import BaseDatasetLoader
from fairaudit.builtin.datasets._dicom_io import MODE as DICOM_MODE
from fairaudit.builtin.datasets._dicom_io import (
    DicomError,
    WindowChoice,
    check_dataset,
    check_window,
    is_dicom,
    open_dataset,
    read_dicom,
)
from fairaudit.builtin.datasets._groups import Bins, check_bins
from fairaudit.builtin.datasets._imaging_io import (
    check_metadata,
    float_to_array,
    metadata_columns,
    read_labels,
    resize_mask,
    to_array,
)
from fairaudit.builtin.datasets._tabular_io import csv_row, read_table
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError
from fairaudit.lazy_images import LazyImages


class ImageFolderDataset(BaseDatasetLoader):
    """Images listed in a metadata CSV, resized to ``image_size`` (grey by default).

    Parameters
    ----------
    metadata:
        CSV with one row per image (relative paths resolve against the spec's folder).
    root:
        Folder the image paths are relative to (default: the CSV's folder).
    path_column, target, sensitive, patient_id, positive_label:
        Image path column, target (0/1, or ``positive_label`` marks positives), sensitive
        columns (an empty cell forms the group ``"(missing)"``; ``NA``, ``None``, ``null`` are
        values there unless in ``na_values``), patient column.
    bins:
        Groups of continuous sensitive columns, as for ``table``: ``{age: [0, 50, 65, 120]}``
        or ``{age: {edges: [...], labels: ["<50", "50-64", "65+"]}}``.
    image_size, grayscale, resize:
        Output side length: every image is resized to ``image_size`` squared, so images of
        mixed sizes are fine; ``null`` keeps the native size, which must then be the same for
        every image (else an error names two files and their sizes).  ``grayscale: false``
        keeps RGB; ``squash`` (ignore aspect), ``crop`` (centre square) or ``pad`` (black
        borders) before resizing.  Every mode is converted: grey, RGB, RGBA (alpha dropped),
        palette and 16-bit/float images alike (those min-max scaled per image); a folder mixing
        8-bit and high-bit-depth images gets one warning, as their intensities differ in scale.
    dicom_window, dicom_frame:
        DICOM files (``.dcm``, ``.dicom``, or no suffix with the ``DICM`` marker; needs
        ``pip install 'fairaudit[dicom]'``) are read with pydicom: rescale slope/intercept
        applied, then a VOI window maps values to ``[0, 1]``: the file's own (``file``, the
        default), none (``none``: the full range of the stored bits, one scale for all images),
        each image's min-max (``minmax``) or the spec's ``{center: 40, width: 400}``;
        ``MONOCHROME1`` is inverted (bright = dense).  Multi-frame files are refused unless
        ``dicom_frame`` (0-based) names the frame to read; compressed files need an installed
        decoder (else an error names the file and its transfer syntax).
    mask_column:
        Optional column of mask image paths (non-zero = inside), e.g. lung masks.
    extras:
        Further columns kept per row (e.g. ``view``, continuous ``age``).
    include, exclude:
        Keep only rows whose column value is listed, e.g. ``{"view": ["PA", "AP"]}``; drop
        rows whose value is listed, e.g. ``{"finding": ["todo"]}``.
    max_images:
        Use only the first ``max_images`` kept rows (quick looks).
    stream:
        Decode images when they are used instead of at load time (folders larger than memory):
        every file's header is read at load (a file that is not an image fails then, and mixed
        bit depths are warned of), its pixels when first used (a truncated file then fails the
        arm that reads it).  Train the ``cnn`` with ``num_workers`` to decode in
        parallel.  Not with ``mask_column`` or ``image_size: null``.
    na_values, encoding:
        Extra strings read as missing; the CSV's text encoding (e.g. ``cp1252``).
    """

    name = "image_folder"
    modality = "images"
    description = "Images listed in a metadata CSV (path, target, sensitive columns, patient id)."

    def __init__(
        self,
        *,
        metadata: str,
        target: str,
        sensitive: list[str],
        root: str | None = None,
        path_column: str = "path",
        patient_id: str | None = None,
        positive_label: str | int | float | bool | list[str | int | float] | None = None,
        image_size: int | None = 64,
        grayscale: bool = True,
        resize: Literal["squash", "crop", "pad"] = "squash",
        mask_column: str | None = None,
        extras: list[str] | None = None,
        include: dict[str, list[str | int | float]] | None = None,
        exclude: dict[str, list[str | int | float]] | None = None,
        max_images: int | None = None,
        na_values: list[str] | None = None,
        encoding: str = "utf-8",
        stream: bool = False,
        bins: Bins | None = None,
        dicom_window: WindowChoice = "file",
        dicom_frame: int | None = None,
    ):
        self.metadata = metadata
        self.target = target
        self.sensitive = sensitive
        self.root = root
        self.path_column = path_column
        self.patient_id = patient_id
        self.positive_label = positive_label
        self.image_size = image_size
        self.grayscale = grayscale
        self.resize = resize
        self.mask_column = mask_column
        self.extras = extras
        self.include = include
        self.exclude = exclude
        self.max_images = max_images
        self.na_values = na_values
        self.encoding = encoding
        self.bins = bins
        self.dicom_window = dicom_window
        self.dicom_frame = dicom_frame
        self.stream = stream

    # ------------------------------------------------------------------ contract
    def resolve(self, base_dir: Path) -> ImageFolderDataset:
        self.metadata = str(_absolute(self.metadata, base_dir))
        if self.root is not None:
            self.root = str(_absolute(self.root, base_dir))
        return self

    def check(self, base_dir: Path) -> list[str]:
        meta = _absolute(self.metadata, base_dir)
        problems = check_bins(self.bins, self.sensitive) + check_metadata(meta, self._named(),
                                                                           encoding=self.encoding)
        root = self._root(meta, base_dir)
        if not root.is_dir():
            problems.append(f"image root folder not found: {root}")
        if not problems and not (self.include or self.exclude):  # filters may drop the empty rows
            problems += self._empty_path_cells(meta)
        if self.image_size is not None and not 8 <= self.image_size <= 1024:
            problems.append(f"image_size must lie in [8, 1024], got {self.image_size}")
        problems += check_window(self.dicom_window)
        if self.dicom_frame is not None and self.dicom_frame < 0:
            problems.append(f"dicom_frame must be >= 0 (0 = the first frame), got {self.dicom_frame}")
        return problems

    def load(self) -> AuditDataset:
        problems = check_window(self.dicom_window)
        if problems:
            raise DataError(f"{self.name}: dataset.params.{problems[0]}")
        meta = _absolute(self.metadata, Path.cwd())
        labels = read_labels(meta, self._named(), target=self.target,
                             positive_label=self.positive_label, sensitive=self.sensitive,
                             patient_id=self.patient_id, extras=self.extras,
                             include=self.include, exclude=self.exclude,
                             na_values=self.na_values, encoding=self.encoding, bins=self.bins)
        keep = len(labels.frame) if self.max_images is None else min(self.max_images,
                                                                     len(labels.frame))
        frame = labels.frame.iloc[:keep]
        root = self._root(meta, Path.cwd())
        lines = [csv_row(int(i)) for i in frame.index]
        paths = self._paths(frame[self.path_column].tolist(), lines, root, meta, self.path_column, "image")
        images = self._stream(paths, lines, meta) if self.stream else self._read_all(paths, lines, meta)
        masks = None
        if self.mask_column:
            mask_paths = self._paths(frame[self.mask_column].tolist(), lines, root, meta, self.mask_column,
                                     "mask")
            masks = np.stack([self._mask(p, line, meta, images.shape[-2:])
                              for p, line in zip(mask_paths, lines, strict=True)])
        return AuditDataset(
            name=meta.stem,
            images=images,
            masks=masks,
            y=labels.y[:keep],
            sensitive=labels.sensitive.iloc[:keep],
            patient_ids=labels.patient_ids[:keep],
            extras={k: v[:keep] for k, v in labels.extras.items()},
            meta={"description": f"Images listed in {meta.name}", "source": str(meta),
                  "root": str(root), "csv_lines": np.asarray(lines), "target": self.target,
                  "positive_label": self.positive_label},
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        import tempfile

        meta = write_example(Path(tempfile.gettempdir()) / "fairaudit-image-folder-example")
        return [{"metadata": str(meta), "target": "label", "sensitive": ["sex"],
                 "patient_id": "patient", "image_size": 16}]

    # ------------------------------------------------------------------ pieces
    def _named(self) -> list[tuple[str, str]]:
        more = [(self.path_column, "path_column")]
        if self.mask_column:
            more.append((self.mask_column, "mask_column"))
        return metadata_columns(self.target, self.sensitive, self.patient_id, self.extras,
                                self.include, self.exclude, more)

    def _empty_path_cells(self, meta: Path) -> list[str]:
        """Empty cells of the image and mask path columns among the rows a run would read (the
        metadata CSV only: no image is opened)."""
        columns = [(self.path_column, "image")] + ([(self.mask_column, "mask")] if self.mask_column else [])
        try:
            frame = read_table(meta, "csv", columns=[c for c, _ in columns], encoding=self.encoding)
        except DataError as exc:
            return [str(exc)]
        if self.max_images is not None:
            frame = frame.iloc[: self.max_images]
        problems = []
        for column, kind in columns:
            cells = frame[column]
            empty = [csv_row(int(i)) for i in frame.index[cells.isna() | (cells.astype(str).str.strip() == "")]]
            if empty:
                problems.append(f"{meta}: {_empty_paths(column, kind, empty, len(frame))}")
        return problems

    def _root(self, meta: Path, base_dir: Path) -> Path:
        return meta.parent if self.root is None else _absolute(self.root, base_dir)

    def _paths(self, values: list[Any], lines: list[int], root: Path, meta: Path, column: str,
               kind: str) -> list[Path]:
        paths, missing = [], []
        empty = [line for value, line in zip(values, lines, strict=True)
                 if not isinstance(value, str) or not value.strip()]
        if empty:
            raise DataError(f"{meta}: {_empty_paths(column, kind, empty, len(values))}")
        for value, line in zip(values, lines, strict=True):
            path = Path(value.strip())
            path = path if path.is_absolute() else root / path
            if not path.is_file():
                missing.append(f"line {line}: {path}")
            paths.append(path)
        if missing:
            shown = "; ".join(missing[:5]) + (f"; ... ({len(missing)} in all)" if len(missing) > 5
                                              else "")
            raise DataError(f"{meta}: {len(missing)} image file(s) not found: {shown}")
        return paths

    def _read_all(self, paths: list[Path], lines: list[int], meta: Path) -> np.ndarray:
        from fairaudit.training import progress

        if not paths:
            raise DataError(f"{meta}: no image to read (max_images={self.max_images})")
        channels = 1 if self.grayscale else 3
        out: np.ndarray | None = None
        first: tuple[Path, int, tuple[int, int]] | None = None
        modes: list[tuple[Path, str]] = []
        for i, (path, line) in enumerate(progress(zip(paths, lines, strict=True),
                                                  desc="reading images", total=len(paths),
                                                  enabled=self.run_context().progress)):
            image = _decode(path, line, meta, self.dicom_window, self.dicom_frame)
            size = _image_size(image)
            modes.append((path, DICOM_MODE if isinstance(image, np.ndarray) else image.mode))
            if first is None:
                first = (path, line, size)
                w, h = size if self.image_size is None else (self.image_size, self.image_size)
                out = np.empty((len(paths), channels, h, w), np.float32)
            elif self.image_size is None and size != first[2]:
                raise DataError(
                    f"{meta}: the images differ in size: {first[0]} (CSV line {first[1]}) is "
                    f"{_size(first[2])} but {path} (CSV line {line}) is {_size(size)}; set "
                    "params.image_size to resize every image to one size (params.resize chooses "
                    "squash, crop or pad for non-square images)")
            assert out is not None
            out[i] = _as_array(image, self.image_size, self.grayscale, self.resize)
        assert out is not None
        _warn_if_mixed_depths(modes, meta)
        return out

    def _stream(self, paths: list[Path], lines: list[int], meta: Path) -> LazyImages:
        if self.mask_column or self.image_size is None:
            raise DataError(f"{meta}: stream: true needs a fixed image_size and no mask_column")
        if not paths:
            raise DataError(f"{meta}: no image to read (max_images={self.max_images})")
        from fairaudit.training import progress

        # headers only (no pixel decoding): unreadable files fail now, not mid-training
        modes = [(path, _header_mode(path, line, meta, self.dicom_frame)) for path, line in
                 progress(zip(paths, lines, strict=True), desc="checking image headers", total=len(paths),
                          enabled=self.run_context().progress)]
        _warn_if_mixed_depths(modes, meta)
        reader = FolderReader([str(p) for p in paths], lines, str(meta), self.image_size, self.grayscale,
                              self.resize, self.dicom_window, self.dicom_frame)
        return LazyImages(reader, np.arange(len(paths)))

    def _mask(self, path: Path, line: int, meta: Path, shape: tuple[int, ...]) -> np.ndarray:
        mask = _open(path, line, meta, as_mask=True)
        if self.image_size is not None:
            return resize_mask(mask, self.image_size, self.resize)
        if mask.shape != tuple(shape):
            raise DataError(f"{meta}: CSV line {line}: mask {path} is {_size(mask.shape[::-1])}, "
                            f"its image {_size(tuple(shape)[::-1])}; with image_size: null they "
                            "must match")
        return (mask > 0).astype(np.uint8)


def _empty_paths(column: str, kind: str, lines: list[int], n: int) -> str:
    """``"mask_column 'mask' is empty on 3 of 12 rows (CSV lines 4, 7, 9)..."``."""
    from fairaudit.caps import examples

    if kind == "mask":
        return (f"mask_column {column!r} is empty on {len(lines)} of {n} rows (CSV line(s) {examples(lines)}): "
                "every row needs a mask file, or leave mask_column out")
    return (f"path_column {column!r} is empty on {len(lines)} of {n} rows (CSV line(s) {examples(lines)}): "
            "every row needs an image file")


@dataclass
class FolderReader:
    """Decodes image ``i`` of a folder on demand (picklable, for DataLoader workers)."""

    paths: list[str]
    lines: list[int]
    meta: str
    image_size: int
    grayscale: bool
    resize: str
    dicom_window: Any = "file"
    dicom_frame: int | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1 if self.grayscale else 3, self.image_size, self.image_size)

    def __call__(self, i: int) -> np.ndarray:
        image = _decode(Path(self.paths[i]), self.lines[i], Path(self.meta), self.dicom_window, self.dicom_frame)
        return _as_array(image, self.image_size, self.grayscale, self.resize)

    def fingerprint(self, i: int) -> bytes:
        stat = os.stat(self.paths[i])
        return f"{self.paths[i]}|{stat.st_size}|{stat.st_mtime_ns}".encode()


#: Pillow modes deeper than 8 bits per channel (scaled per image by ``to_array``).
HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


def _warn_if_mixed_depths(modes: list[tuple[Path, str]], meta: Path) -> None:
    """One warning when a folder mixes 8-bit, high-bit-depth and DICOM images (``modes``: each
    image's path and Pillow mode, ``"DICOM"`` for a DICOM file)."""
    depths: dict[str, list[tuple[Path, str]]] = {"8-bit": [], "high-bit-depth": [], "DICOM": []}
    for path, mode in modes:
        kind = "DICOM" if mode == DICOM_MODE else "high-bit-depth" if mode in HIGH_BIT_MODES else "8-bit"
        depths[kind].append((path, mode))
    if sum(bool(found) for found in depths.values()) < 2:
        return
    mixed = "; ".join(
        f"{len(found)} {depth} ({', '.join(sorted({m for _, m in found}))}; e.g. {found[0][0].name})"
        for depth, found in depths.items() if found
    )
    dicom = " and DICOM ones windowed (params.dicom_window)" if depths["DICOM"] else ""
    warnings.warn(
        f"{meta}: the images mix bit depths: {mixed}. High-bit-depth images are min-max scaled per "
        f"image and 8-bit ones divided by 255{dicom}, so their intensities are not on one scale; convert "
        "them all to one depth",
        UserWarning,
        stacklevel=3,
    )


def _size(wh: tuple[int, ...]) -> str:
    return f"{wh[0]}x{wh[1]} px"


def _absolute(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (Path(base_dir) / p).resolve()


def _read_errors() -> tuple[type[BaseException], ...]:
    """What Pillow raises for a file it cannot open or decode."""
    from PIL import Image, UnidentifiedImageError

    return (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _header_mode(path: Path, line: int, meta: Path, frame: int | None = None) -> str:
    """The Pillow mode from the file's header (pixels are not decoded; ``"DICOM"`` for a DICOM file
    that is an image ``read_dicom`` reads), or a DataError."""
    from PIL import Image

    if is_dicom(path):
        try:
            check_dataset(open_dataset(path, header_only=True), frame)
        except DicomError as exc:
            raise _dicom_error(path, line, meta, exc) from None
        return DICOM_MODE

    try:
        with Image.open(path) as img:
            return str(img.mode)
    except _read_errors() as exc:
        raise DataError(f"{meta}: CSV line {line}: cannot read image {path} ({exc})") from exc


def _decode(path: Path, line: int, meta: Path, window: Any, frame: int | None) -> Any:
    """A DICOM file's intensities (float array in ``[0, 1]``), or any other image opened by Pillow."""
    if not is_dicom(path):
        return _open(path, line, meta)
    try:
        return read_dicom(path, window=window, frame=frame)
    except DicomError as exc:
        raise _dicom_error(path, line, meta, exc) from None


def _dicom_error(path: Path, line: int, meta: Path, exc: DicomError) -> DataError:
    return DataError(f"{meta}: CSV line {line}: cannot read DICOM {path}: {exc}")


def _image_size(image: Any) -> tuple[int, int]:
    """``(width, height)`` of a Pillow image or an ``(H, W[, 3])`` array."""
    return (image.shape[1], image.shape[0]) if isinstance(image, np.ndarray) else tuple(image.size)


def _as_array(image: Any, size: int | None, grayscale: bool, resize: str) -> np.ndarray:
    """``(C, H, W)`` float32 in ``[0, 1]`` from what :func:`_decode` returned."""
    if isinstance(image, np.ndarray):
        return float_to_array(image, size, grayscale=grayscale, resize=resize)  # type: ignore[arg-type]
    return to_array(image, size, grayscale=grayscale, resize=resize)  # type: ignore[arg-type]


def _open(path: Path, line: int, meta: Path, as_mask: bool = False) -> Any:
    """Open and fully decode an image, or raise a DataError naming the CSV line."""
    from PIL import Image, ImageFile

    # weasyprint sets PIL's process-wide LOAD_TRUNCATED_IMAGES = True on import; a truncated
    # radiograph must still be an error here, whatever was imported before.
    tolerant, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("L")) if as_mask else img.copy()
    except _read_errors() as exc:
        kind = "mask" if as_mask else "image"
        raise DataError(f"{meta}: CSV line {line}: cannot read {kind} {path} ({exc})") from exc
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = tolerant


def write_example(folder: Path, n: int = 12) -> Path:
    """A tiny folder of PNG images with ``metadata.csv`` (for tests and ``get_test_params``)."""
    import os

    import pandas as pd
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        label = i % 2
        arr = (rng.random((20, 24)) * 100 + 100 * label).astype(np.uint8)
        name = f"img_{i:02d}.png"
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        Image.fromarray(arr, mode="L").save(tmp, format="PNG")
        tmp.replace(folder / name)
        rows.append({"path": name, "label": label, "sex": "FM"[(i // 2) % 2],
                     "patient": f"p{i // 3}"})
    meta = folder / "metadata.csv"
    tmp = folder / f".metadata.{os.getpid()}.tmp"
    pd.DataFrame(rows).to_csv(tmp, index=False)
    tmp.replace(meta)
    return meta
