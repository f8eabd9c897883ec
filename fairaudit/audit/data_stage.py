"""The data of an audit: load through the dataset plugin, check the attributes, split by patient;
and the views of a split that arms and metrics use (probe features, editor metadata)."""

from __future__ import annotations

import dataclasses
import difflib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fairaudit.audit.splits import Splits, scores_splits, split_dataset
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError
from fairaudit.spec.models import AuditSpec
from fairaudit.spec.settings import split_seed

if TYPE_CHECKING:
    from fairaudit.audit.recording import RunLog
    from fairaudit.base import BaseDatasetLoader


def load_and_split(loader: BaseDatasetLoader, spec: AuditSpec, log: RunLog) -> tuple[AuditDataset, Splits]:
    """Load the dataset, check and prepare its attributes, split it by patient (a dataset of given
    scores: its validation rows apart, every other row is test data)."""
    log.say(f"loading dataset {spec.dataset.name!r}")
    # e.g. missing group values, mixed bit depths: into the report too
    raw = log.keeping_warnings(lambda: log.timed("load_data", loader.load), categories=(UserWarning, RuntimeWarning))
    dataset, notes = prepare_dataset(raw, spec)
    log.warnings.extend(notes)
    if dataset.scores is not None:  # given scores: nothing to train, every row but validation is test
        splits, notes = scores_splits(dataset, dataset.meta.get("val_rows", []))
        log.warnings.extend(notes)
        return dataset, splits
    split = spec.split
    stratify = [a for a in split.stratify if a in dataset.sensitive.columns]
    splits = log.keeping_warnings(
        lambda: split_dataset(dataset, test_size=split.test_size, val_size=split.val_size, stratify=stratify,
                              seed=split_seed(spec)),
        announce=False)
    return dataset, splits


def prepare_dataset(dataset: AuditDataset, spec: AuditSpec) -> tuple[AuditDataset, list[str]]:
    """Move attributes stored in ``extras`` into ``sensitive``; check every attribute is usable."""
    sensitive = dataset.sensitive.copy()
    for attr in spec.attributes:
        if attr in sensitive.columns:
            continue
        if attr not in dataset.extras:
            raise _unknown_attribute(dataset, attr)
        sensitive[attr] = dataset.extras[attr]
    warnings_out: list[str] = []
    for attr in spec.attributes:
        col = sensitive[attr]
        if col.isna().any():
            warnings_out.append(f"attribute {attr!r}: {int(col.isna().sum())} rows have no value; they form the "
                                "group '(missing)'")
            sensitive[attr] = col.astype("object").where(col.notna(), "(missing)")
        warnings_out += _group_size_notes(attr, sensitive[attr].astype(str).value_counts(),
                                          spec.statistics.min_group_size)
    prepared = dataclasses.replace(dataset, sensitive=sensitive)
    y_values = set(np.unique(prepared.y).tolist())
    if not y_values <= {0, 1}:
        raise DataError(f"dataset {dataset.name!r}: the target must be binary 0/1, found values "
                        f"{sorted(y_values)[:5]}")
    return prepared, warnings_out


def _unknown_attribute(dataset: AuditDataset, attr: str) -> DataError:
    available = sorted({*dataset.sensitive.columns, *dataset.extras})
    close = difflib.get_close_matches(attr, available, n=2)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return DataError(f"attribute {attr!r} (spec field 'attributes') is not among the sensitive attributes of "
                     f"dataset {dataset.name!r}.{hint} Available: {available}; a column of the data is one when "
                     "listed in dataset.params.sensitive")


def _group_size_notes(attr: str, counts: pd.Series, min_group_size: int) -> list[str]:
    """One warning for the groups below ``min_group_size`` (their count and the first few, the
    smallest first); a single group is an error."""
    from fairaudit.caps import examples

    if len(counts) < 2:
        raise DataError(f"attribute {attr!r} has a single group ({counts.index[0]!r}); a fairness "
                        "audit needs at least two groups")
    small = counts[counts < min_group_size].sort_values(kind="stable")
    if small.empty:
        return []
    why = ("too small to judge on row-count metrics (selection rate, accuracy, calibration); rate and AUC "
           "metrics judge it on its events (min_group_positives)")
    if len(small) == 1:
        return [f"attribute {attr!r}: group {small.index[0]!r} has {int(small.iloc[0])} row(s), below "
                f"min_group_size={min_group_size}: {why}"]
    names = [f"{g!r} ({int(n)})" for g, n in small.items()]
    return [f"attribute {attr!r}: {len(small):,} of its {len(counts):,} groups have fewer than "
            f"min_group_size={min_group_size} rows (row counts: {examples(names)}): "
            f"{why.replace('judge it on its', 'judge them on their')}"]


def _pooling(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The block size and the pooled height and width of images of ``shape`` (at most 32×32)."""
    h, w = shape[-2:]
    factor = max(1, int(np.ceil(max(h, w) / 32)))
    return factor, h // factor, w // factor


def representation_name(dataset: AuditDataset) -> str:
    """Words for :func:`probe_representation` of ``dataset`` (probe results quote them)."""
    if dataset.X is not None:
        return f"input features ({int(np.prod(dataset.X.shape[1:]))} columns)"
    _, h2, w2 = _pooling(tuple(dataset.images.shape))
    return f"input pixels pooled to {h2}×{w2}"


def probe_representation(dataset: AuditDataset) -> np.ndarray:
    """Features for representation probes: X, or images average-pooled to at most 32×32."""
    if dataset.X is not None:
        from fairaudit.outofcore import is_lazy

        if is_lazy(dataset.X):  # memory-mapped: probes read at most their max_rows rows
            return dataset.X
        return np.asarray(dataset.X, dtype=np.float32).reshape(len(dataset), -1)
    from fairaudit.lazy_images import iter_image_chunks

    n, c, h, w = dataset.images.shape
    factor, h2, w2 = _pooling((h, w))
    blocks = [block[:, :, : h2 * factor, : w2 * factor].reshape(len(block), c, h2, factor, w2, factor).mean((3, 5))
              for block in iter_image_chunks(dataset.images)]  # chunked: streamed images never load whole
    return np.concatenate(blocks).reshape(n, -1) if blocks else np.zeros((0, c * h2 * w2), np.float32)


def test_metadata(split: AuditDataset) -> dict[str, np.ndarray]:
    """Per-image metadata a counterfactual editor may use for its source captions: the label,
    the sensitive attributes and 1-D extras (never patient identifiers)."""
    meta: dict[str, np.ndarray] = {col: split.sensitive[col].to_numpy() for col in split.sensitive.columns}
    for key, value in split.extras.items():
        arr = np.asarray(value)
        if arr.ndim == 1 and len(arr) == len(split):
            meta.setdefault(key, arr)
    meta["label"] = np.asarray(split.y)
    return meta
