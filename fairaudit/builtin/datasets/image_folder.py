"""``image_folder``: a folder of images plus a metadata CSV (CheXpert / MIMIC-CXR style)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from fairaudit.base import BaseDatasetLoader
from fairaudit.builtin.datasets._imaging_io import (
    check_metadata,
    metadata_columns,
    read_labels,
    resize_mask,
    to_array,
)
from fairaudit.builtin.datasets._tabular_io import csv_row
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError


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
        columns (missing values form ``"(missing)"``), patient column.
    image_size, grayscale, resize:
        Output side length; ``grayscale: false`` keeps RGB; ``squash`` (ignore aspect),
        ``crop`` (centre square) or ``pad`` (black borders) before resizing.
    mask_column:
        Optional column of mask image paths (non-zero = inside), e.g. lung masks.
    extras:
        Further columns kept per row (e.g. ``view``, continuous ``age``).
    include, exclude:
        Keep only rows whose column value is listed, e.g. ``{"view": ["PA", "AP"]}``; drop
        rows whose value is listed, e.g. ``{"finding": ["todo"]}``.
    max_images:
        Use only the first ``max_images`` kept rows (quick looks).
    na_values:
        Extra strings read as missing.
    """

    name = "image_folder"
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
        image_size: int = 64,
        grayscale: bool = True,
        resize: Literal["squash", "crop", "pad"] = "squash",
        mask_column: str | None = None,
        extras: list[str] | None = None,
        include: dict[str, list[str | int | float]] | None = None,
        exclude: dict[str, list[str | int | float]] | None = None,
        max_images: int | None = None,
        na_values: list[str] | None = None,
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

    # ------------------------------------------------------------------ contract
    def resolve(self, base_dir: Path) -> ImageFolderDataset:
        self.metadata = str(_absolute(self.metadata, base_dir))
        if self.root is not None:
            self.root = str(_absolute(self.root, base_dir))
        return self

    def check(self, base_dir: Path) -> list[str]:
        meta = _absolute(self.metadata, base_dir)
        problems = check_metadata(meta, self._named())
        root = self._root(meta, base_dir)
        if not root.is_dir():
            problems.append(f"image root folder not found: {root}")
        if not 8 <= self.image_size <= 1024:
            problems.append(f"image_size must lie in [8, 1024], got {self.image_size}")
        return problems

    def load(self) -> AuditDataset:
        meta = _absolute(self.metadata, Path.cwd())
        labels = read_labels(meta, self._named(), target=self.target,
                             positive_label=self.positive_label, sensitive=self.sensitive,
                             patient_id=self.patient_id, extras=self.extras,
                             include=self.include, exclude=self.exclude,
                             na_values=self.na_values)
        keep = len(labels.frame) if self.max_images is None else min(self.max_images,
                                                                     len(labels.frame))
        frame = labels.frame.iloc[:keep]
        root = self._root(meta, Path.cwd())
        lines = [csv_row(int(i)) for i in frame.index]
        paths = self._paths(frame[self.path_column].tolist(), lines, root, meta)
        images = self._read_all(paths, lines, meta)
        masks = None
        if self.mask_column:
            mask_paths = self._paths(frame[self.mask_column].tolist(), lines, root, meta)
            masks = np.stack([resize_mask(_open(p, line, meta, as_mask=True), self.image_size,
                                          self.resize) for p, line in zip(mask_paths, lines,
                                                                           strict=True)])
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

    def _root(self, meta: Path, base_dir: Path) -> Path:
        return meta.parent if self.root is None else _absolute(self.root, base_dir)

    def _paths(self, values: list[Any], lines: list[int], root: Path, meta: Path) -> list[Path]:
        paths, missing = [], []
        for value, line in zip(values, lines, strict=True):
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"{meta}: CSV line {line}: empty image path")
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

        channels = 1 if self.grayscale else 3
        out = np.empty((len(paths), channels, self.image_size, self.image_size), np.float32)
        for i, (path, line) in enumerate(progress(zip(paths, lines, strict=True),
                                                  desc="reading images", total=len(paths))):
            out[i] = to_array(_open(path, line, meta), self.image_size,
                              grayscale=self.grayscale, resize=self.resize)
        return out


def _absolute(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (Path(base_dir) / p).resolve()


def _open(path: Path, line: int, meta: Path, as_mask: bool = False) -> Any:
    """Open and fully decode an image, or raise a DataError naming the CSV line."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("L")) if as_mask else img.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        kind = "mask" if as_mask else "image"
        raise DataError(f"{meta}: CSV line {line}: cannot read {kind} {path} ({exc})") from exc


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
