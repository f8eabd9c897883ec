"""``image_npz``: an image array packed in an ``.npz`` plus an index CSV (one row per image).

Fits packs such as the shared covid-chestxray-dataset (``covid_cxr_256.npz`` with
``covid_cxr_256_index.csv``): row ``i`` of the CSV (or the row whose ``index_column`` is ``i``)
describes ``images[i]``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fairaudit.base import BaseDatasetLoader
from fairaudit.builtin.datasets._groups import Bins, check_bins
from fairaudit.builtin.datasets._imaging_io import (
    check_metadata,
    fit_square,
    metadata_columns,
    read_labels,
    resize_mask,
)
from fairaudit.builtin.datasets._tabular_io import csv_row, require_file
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError


class ImageNpzDataset(BaseDatasetLoader):
    """Images from an NPZ array ``(n, H, W)`` / ``(n, H, W, C)`` / ``(n, C, H, W)`` + index CSV.

    Parameters
    ----------
    path, index:
        The NPZ file and its index CSV (relative paths resolve against the spec's folder).
    images_key, masks_key, mask_value:
        Array names of the images and (optionally) masks; a mask pixel is inside where it
        equals ``mask_value`` (``None``: non-zero).
    index_column:
        CSV column giving each row's position in the arrays (default: the row order, and then
        the CSV must have exactly one data row per image).
    target, sensitive, patient_id, positive_label, extras, include, exclude, na_values, encoding, bins:
        As for ``image_folder``.  Arrays of Python objects (pickles) are refused.
    image_size, resize:
        Output side length (``None``: keep the packed size) and how to fit non-square images.
    """

    name = "image_npz"
    modality = "images"
    description = "Images packed in an NPZ array with a metadata/index CSV (one row per image)."

    def __init__(
        self,
        *,
        path: str,
        index: str,
        target: str,
        sensitive: list[str],
        images_key: str = "images",
        masks_key: str | None = None,
        mask_value: int | None = None,
        index_column: str | None = None,
        patient_id: str | None = None,
        positive_label: str | int | float | bool | list[str | int | float] | None = None,
        extras: list[str] | None = None,
        include: dict[str, list[str | int | float]] | None = None,
        exclude: dict[str, list[str | int | float]] | None = None,
        image_size: int | None = 64,
        resize: Literal["squash", "crop", "pad"] = "squash",
        na_values: list[str] | None = None,
        encoding: str = "utf-8",
        bins: Bins | None = None,
    ):
        self.path = path
        self.index = index
        self.target = target
        self.sensitive = sensitive
        self.images_key = images_key
        self.masks_key = masks_key
        self.mask_value = mask_value
        self.index_column = index_column
        self.patient_id = patient_id
        self.positive_label = positive_label
        self.extras = extras
        self.include = include
        self.exclude = exclude
        self.image_size = image_size
        self.resize = resize
        self.na_values = na_values
        self.encoding = encoding
        self.bins = bins

    # ------------------------------------------------------------------ contract
    def resolve(self, base_dir: Path) -> ImageNpzDataset:
        self.path = str(_absolute(self.path, base_dir))
        self.index = str(_absolute(self.index, base_dir))
        return self

    def check(self, base_dir: Path) -> list[str]:
        problems = check_bins(self.bins, self.sensitive)
        problems += check_metadata(_absolute(self.index, base_dir), self._named(), encoding=self.encoding)
        npz = _absolute(self.path, base_dir)
        try:
            keys = _npz_keys(npz)
        except DataError as exc:
            return [*problems, str(exc)]
        for key in filter(None, (self.images_key, self.masks_key)):
            if key not in keys:
                problems.append(f"{npz}: no array {key!r}; arrays: {keys}")
                continue
            try:
                _array_header(npz, key)
            except DataError as exc:
                problems.append(str(exc))
        return problems

    def load(self) -> AuditDataset:
        npz_path, index_path = _absolute(self.path, Path.cwd()), _absolute(self.index, Path.cwd())
        keys = _npz_keys(npz_path)
        for key in filter(None, (self.images_key, self.masks_key)):
            if key not in keys:
                raise DataError(f"{npz_path}: no array {key!r}; arrays: {keys}")
        labels = read_labels(index_path, self._named(), target=self.target,
                             positive_label=self.positive_label, sensitive=self.sensitive,
                             patient_id=self.patient_id, extras=self.extras,
                             include=self.include, exclude=self.exclude,
                             na_values=self.na_values, encoding=self.encoding, bins=self.bins)
        images = _read_array(npz_path, self.images_key)
        masks = _read_array(npz_path, self.masks_key) if self.masks_key else None
        if masks is not None and masks.shape[0] != images.shape[0]:
            raise DataError(f"{npz_path}: array {self.masks_key!r} holds {masks.shape[0]} masks but "
                            f"{self.images_key!r} holds {images.shape[0]} images")
        if self.index_column is None and labels.n_rows != len(images):
            raise DataError(f"{index_path} has {labels.n_rows} data rows but array "
                            f"{self.images_key!r} in {npz_path} holds {len(images)} images; without "
                            "params.index_column row i of the CSV describes image i, so the counts "
                            "must match (or name the column holding each row's image number in "
                            "params.index_column)")
        rows = self._array_rows(labels.frame, len(images), index_path)
        lines = [csv_row(int(i)) for i in labels.frame.index]
        out = self._images(images[rows], lines, npz_path)
        mask_out = None
        if masks is not None:
            size = out.shape[-1]
            picked = masks[rows] > 0 if self.mask_value is None else masks[rows] == self.mask_value
            mask_out = np.stack([resize_mask(m, size, self.resize) for m in picked])
        return AuditDataset(
            name=npz_path.stem, images=out, masks=mask_out, y=labels.y,
            sensitive=labels.sensitive, patient_ids=labels.patient_ids, extras=labels.extras,
            meta={"description": f"Images packed in {npz_path.name} ({index_path.name})",
                  "source": str(npz_path), "index": str(index_path), "array_rows": rows,
                  "target": self.target, "positive_label": self.positive_label},
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        import tempfile

        npz, index = write_example(Path(tempfile.gettempdir()) / "fairaudit-image-npz-example")
        return [{"path": str(npz), "index": str(index), "target": "label", "sensitive": ["sex"],
                 "image_size": 16, "masks_key": "masks"}]

    # ------------------------------------------------------------------ pieces
    def _named(self) -> list[tuple[str, str]]:
        more = [(self.index_column, "index_column")] if self.index_column else []
        return metadata_columns(self.target, self.sensitive, self.patient_id, self.extras,
                                self.include, self.exclude, more)

    def _array_rows(self, frame: Any, n_images: int, index_path: Path) -> np.ndarray:
        if self.index_column:
            col = frame[self.index_column]
            if col.isna().any() or not np.all(np.mod(col.to_numpy(dtype=float), 1) == 0):
                raise DataError(f"{index_path}: index_column {self.index_column!r} must hold "
                                "whole numbers")
            rows = col.to_numpy(dtype=np.int64)
        else:
            rows = np.asarray(frame.index, dtype=np.int64)
        bad = (rows < 0) | (rows >= n_images)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(f"{index_path}: CSV line {csv_row(int(frame.index[first]))} points "
                            f"at image {rows[first]}, but the array holds {n_images} images")
        return rows

    def _images(self, images: np.ndarray, lines: list[int], npz_path: Path) -> np.ndarray:
        """Packed images as float32 ``(n, C, S, S)`` in ``[0, 1]``."""
        from PIL import Image

        arr = np.asarray(images)
        if arr.ndim == 3:
            arr = arr[:, None]
        elif arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
            arr = arr.transpose(0, 3, 1, 2)
        if arr.ndim != 4 or arr.shape[1] not in (1, 3):
            raise DataError(f"{npz_path}: array {self.images_key!r} has shape {images.shape}; "
                            "expected (n, H, W), (n, H, W, C) or (n, C, H, W) with C = 1 or 3")
        if arr.dtype == np.uint8:
            scaled = arr.astype(np.float32) / 255.0
        else:
            scaled = arr.astype(np.float32)
            if np.isnan(scaled).any():
                first = int(np.flatnonzero(np.isnan(scaled).reshape(len(arr), -1).any(1))[0])
                raise DataError(f"{npz_path}: image for CSV line {lines[first]} contains NaN")
            if scaled.min() < 0 or scaled.max() > 1:
                scaled = scaled / max(float(scaled.max()), 1e-12)
        size = self.image_size
        if size is None or (arr.shape[2] == arr.shape[3] == size):
            return np.clip(scaled, 0.0, 1.0)
        out = np.empty((len(arr), arr.shape[1], size, size), np.float32)
        for i, img in enumerate(scaled):
            for c in range(img.shape[0]):
                grey = fit_square(Image.fromarray(img[c], mode="F"), size, self.resize)
                out[i, c] = np.asarray(grey, dtype=np.float32)
        return np.clip(out, 0.0, 1.0)


def _absolute(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (Path(base_dir) / p).resolve()


def _array_header(path: Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of array ``key`` from its ``.npy`` header (no data read); refuses
    arrays of Python objects, which only a pickle could restore."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path}: array {key!r} is not a readable .npy array ({exc})") from exc
    if dtype.hasobject:
        raise DataError(f"{path}: array {key!r} holds Python objects (a pickle), which fairaudit "
                        "refuses to load because unpickling can run code; save plain numeric arrays")
    return shape, dtype


def _read_array(path: Path, key: str) -> np.ndarray:
    """Array ``key`` of the NPZ at ``path`` (never unpickling), or a :class:`DataError`."""
    _array_header(path, key)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return npz[key]
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read array {key!r} ({exc})") from exc


def _npz_keys(path: Path) -> list[str]:
    """Array names of an NPZ without decompressing them."""
    require_file(path)
    try:
        with zipfile.ZipFile(path) as zf:
            return [n[:-4] if n.endswith(".npy") else n for n in zf.namelist()]
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not a readable NPZ file ({exc})") from exc


def write_example(folder: Path, n: int = 10) -> tuple[Path, Path]:
    """A tiny NPZ pack (uint8 images, masks) with its index CSV; returns both paths."""
    import os

    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    label = np.arange(n) % 2
    images = (rng.random((n, 20, 20)) * 120 + 100 * label[:, None, None]).astype(np.uint8)
    masks = np.zeros((n, 20, 20), np.uint8)
    masks[:, 5:15, 4:9] = 1
    npz, index = folder / "pack.npz", folder / "pack_index.csv"
    tmp = folder / f".pack.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, images=images, masks=masks)
    tmp.replace(npz)
    pd.DataFrame({"npz_index": np.arange(n), "label": label,
                  "sex": np.where(np.arange(n) % 3 == 0, "F", "M")}).to_csv(tmp, index=False)
    tmp.replace(index)
    return npz, index
