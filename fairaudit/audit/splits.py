"""Patient-level, stratified, seeded train/validation/test splits."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairaudit.data import AuditDataset
from fairaudit.errors import DataError


@dataclass
class Splits:
    """Train, validation and test subsets; an audit of given scores has no training split."""

    train: AuditDataset | None
    val: AuditDataset | None
    test: AuditDataset

    def items(self) -> list[tuple[str, AuditDataset]]:
        named = [("train", self.train), ("val", self.val), ("test", self.test)]
        return [(name, split) for name, split in named if split is not None]


def scores_splits(dataset: AuditDataset, val_rows: np.ndarray) -> tuple[Splits, list[str]]:
    """The splits of a dataset of given scores: ``val_rows`` (positions) only fix operating
    points, every other row is test data; no training split.  Warns when a patient has rows on
    both sides (the operating point then saw some of the test patients)."""
    is_val = np.zeros(len(dataset), dtype=bool)
    is_val[np.asarray(val_rows, dtype=np.int64)] = True
    test = dataset.subset(np.flatnonzero(~is_val))
    val = dataset.subset(np.flatnonzero(is_val)) if is_val.any() else None
    notes: list[str] = []
    if val is not None:
        shared = np.intersect1d(val.patient_ids.astype(str), test.patient_ids.astype(str))
        if len(shared):
            notes.append(f"{len(shared)} patient(s) have rows among both the validation rows and the test rows "
                         f"(e.g. {', '.join(map(repr, shared[:3].tolist()))}): operating points fixed on the "
                         "validation rows saw some test patients")
        if len(np.unique(val.y)) < 2:
            notes.append("the validation rows hold a single class: operating points that need both "
                         "(sensitivity at fixed specificity) cannot be fixed")
    return Splits(train=None, val=val, test=test), notes


def _patient_strata(dataset: AuditDataset, stratify: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Unique patients and one stratum label per patient (label + attributes of its first row)."""
    frame = pd.DataFrame({"pid": dataset.patient_ids.astype(str), "y": dataset.y.astype(int)})
    for col in stratify:
        frame[col] = dataset.sensitive[col].astype(str).to_numpy()
    first = frame.groupby("pid", sort=True).first()
    columns = [first[c].astype(str) for c in ["y", *stratify]]
    strata = columns[0].str.cat(columns[1:], sep="|") if len(columns) > 1 else columns[0]  # vectorised
    return first.index.to_numpy(), strata.to_numpy()


def _split_patients(pids: np.ndarray, strata: np.ndarray | None, size: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if strata is not None:
        _, counts = np.unique(strata, return_counts=True)
        if counts.min() < 2:
            warnings.warn("some strata have fewer than 2 patients; splitting stratified by label only",
                          RuntimeWarning, stacklevel=3)
            strata = None
    keep, held = train_test_split(pids, test_size=size, random_state=seed, stratify=strata)
    return np.asarray(keep), np.asarray(held)


def split_dataset(dataset: AuditDataset, *, test_size: float, val_size: float,
                  stratify: list[str], seed: int) -> Splits:
    """Split by patient so that no patient appears in two splits."""
    pids, strata = _patient_strata(dataset, stratify)
    if len(pids) < 10:
        raise DataError(f"dataset {dataset.name!r} has only {len(pids)} patients; at least 10 are needed "
                        "to split into train and test")
    try:
        rest, test = _split_patients(pids, strata, test_size, seed)
    except ValueError:
        labels = _patient_strata(dataset, [])[1]
        rest, test = _split_patients(pids, labels, test_size, seed)
    val = np.array([], dtype=pids.dtype)
    if val_size > 0:
        rest_strata = pd.Series(strata, index=pids).loc[rest].to_numpy()
        rel = val_size / (1.0 - test_size)
        try:
            rest, val = _split_patients(rest, rest_strata, rel, seed + 1)
        except ValueError:
            rest, val = _split_patients(rest, None, rel, seed + 1)
    row_pids = dataset.patient_ids.astype(str)

    def rows(chosen: np.ndarray) -> np.ndarray:
        # str, not object: np.isin compares object arrays pairwise (O(rows x patients))
        return np.flatnonzero(np.isin(row_pids, np.asarray(chosen, dtype=str)))

    train_rows = rows(rest)
    if len(np.unique(dataset.y[train_rows])) < 2:
        raise DataError(f"the training split of {dataset.name!r} has a single class; the target must "
                        "have both 0 and 1")
    return Splits(
        train=dataset.subset(train_rows),
        val=dataset.subset(rows(val)) if len(val) else None,
        test=dataset.subset(rows(test)),
    )
