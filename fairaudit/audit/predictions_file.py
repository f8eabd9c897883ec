"""Row-level predictions of each arm in the run folder, so any figure can be recomputed elsewhere.

``arms/<arm>.predictions.parquet`` (the arm's name made file-safe as the resume store does) has
one row per scored row of the test split and, where the arm has validation scores, of the
validation split: ``row`` (position in the loaded data), ``patient_id``, ``split`` (``test`` or
``val``), ``label`` (0/1), ``score`` (in [0, 1]), ``decision`` (``score >= threshold``) and every
sensitive attribute as its group (a name taken by one of these columns gets `` (attribute)``).
Rows are in the loaded data's order.  Written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit import atomic
from fairaudit.audit.arm import Arm
from fairaudit.audit.resume import safe_name
from fairaudit.audit.splits import Splits
from fairaudit.data import AuditDataset

#: The fixed columns of a predictions file, in order (the sensitive attributes follow).
COLUMNS = ("row", "patient_id", "split", "label", "score", "decision")


def predictions_path(run_dir: Path, arm_name: str) -> Path:
    """Where the predictions of ``arm_name`` are kept in the run folder."""
    return Path(run_dir) / "arms" / f"{safe_name(arm_name)}.predictions.parquet"


def predictions_frame(arm: Arm, splits: Splits, threshold: float) -> pd.DataFrame:
    """The arm's scored rows (test, then validation where scored), in the loaded data's order."""
    parts = [_part(splits.test, "test", arm.scores_test, threshold)]
    if splits.val is not None and arm.scores_val is not None:
        parts.append(_part(splits.val, "val", arm.scores_val, threshold))
    return pd.concat(parts, ignore_index=True).sort_values("row", kind="stable", ignore_index=True)


def write_predictions(run_dir: Path, arm: Arm, splits: Splits, threshold: float) -> Path:
    """Write the arm's predictions file atomically; returns its path."""
    path = predictions_path(run_dir, arm.result.name)
    frame = predictions_frame(arm, splits, threshold)
    with atomic.atomic_open(path, "wb") as fh:
        frame.to_parquet(fh, index=False)
    return path


def _part(split: AuditDataset, name: str, scores: np.ndarray | None, threshold: float) -> pd.DataFrame:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(split):
        raise ValueError(f"{len(scores)} {name} scores for {len(split)} {name} rows")
    assert split.index is not None
    frame = pd.DataFrame({
        "row": np.asarray(split.index, dtype=np.int64),
        "patient_id": split.patient_ids.astype(str),
        "split": name,
        "label": np.asarray(split.y, dtype=np.int64),
        "score": scores,
        "decision": (scores >= threshold).astype(np.int64),
    })
    for column in split.sensitive.columns:
        key = f"{column} (attribute)" if column in COLUMNS else str(column)
        frame[key] = split.sensitive[column].astype(str).to_numpy()
    return frame
