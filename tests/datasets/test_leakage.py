"""Leakage guard of ``table``'s default features: columns that give the target away and row ids are
left out (warned), named ones kept (warned); a downstream audit's AUC shows what it saves."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fairaudit.builtin.datasets._leakage import SCREEN_ROWS, suspicious_columns
from fairaudit.builtin.datasets.table import TableDataset
from fairaudit.cli.app import app


def clinic(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A moderate true signal (two lab values), plus what an export drags along: a row id, the raw
    HbA1c the 0/1 target was thresholded from, and the diagnosis text it was coded from."""
    rng = np.random.default_rng(seed)
    hba1c = rng.normal(6.0, 1.0, n)
    y = (hba1c >= 6.5).astype(int)
    frame = pd.DataFrame({
        "row_id": np.arange(1000, 1000 + n),
        "sex": rng.choice(["F", "M"], n),
        "bmi": (27 + 2.0 * (hba1c - 6.0) + rng.normal(0, 3.0, n)).round(1),
        "glucose": (100 + 8.0 * (hba1c - 6.0) + rng.normal(0, 14.0, n)).round(0),
        "steps": rng.normal(8000, 2000, n).round(0),
        "hba1c": hba1c.round(2),
        "diagnosis": np.where(y == 1, "diabetes", "no diabetes"),
        "y": y,
    })
    return frame.sort_values("y", kind="stable").reset_index(drop=True)  # ids ordered by label too


def test_reasons_per_column() -> None:
    frame = clinic()
    frame["copy"] = frame["y"]
    frame["code"] = [f"MRN{i:05d}" for i in range(len(frame))]
    found = suspicious_columns(frame, ["row_id", "bmi", "glucose", "steps", "hba1c", "diagnosis", "copy", "code"],
                               frame["y"].to_numpy())
    assert list(found) == ["row_id", "hba1c", "diagnosis", "copy", "code"]
    assert found["row_id"] == "whole numbers, unique per row: an identifier"
    assert found["hba1c"] == "a threshold on it separates the target: single-column AUC 1.000"
    assert found["diagnosis"] == "its value gives the target exactly: 'diabetes' -> 1, 'no diabetes' -> 0"
    assert found["copy"].startswith("its value gives the target exactly: '0' -> 0, '1' -> 1")
    assert found["code"] == "unique per row: an identifier"


def test_inverted_and_imperfect_separators() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    score = rng.normal(size=400) + 3.0 * y  # strong but overlapping: AUC ~0.98, kept
    frame = pd.DataFrame({"minus": -10.0 * y + rng.random(400), "strong": score,
                          "flag": np.where(rng.random(400) < 0.95, y, 1 - y)})
    assert list(suspicious_columns(frame, list(frame), y)) == ["minus"]  # AUC 0: a separator all the same


def test_large_tables_are_screened_on_a_subset_and_confirmed_on_all_rows() -> None:
    rng = np.random.default_rng(2)
    n = SCREEN_ROWS + 3000
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame({"raw": rng.normal(size=n) + 20.0 * y, "noise": rng.normal(size=n)})
    frame["flawed"] = frame["raw"]
    frame.loc[frame.index[-1:], "raw"] = np.where(y[-1:] == 1, -50.0, 50.0)  # 1 row on the wrong side
    frame.loc[frame.index[-20:], "flawed"] = np.where(y[-20:] == 1, -50.0, 50.0)  # 20 rows: AUC ~0.995
    found = suspicious_columns(frame, ["raw", "noise", "flawed"], y)
    assert list(found) == ["raw"] and "AUC 1.000" in found["raw"]


def test_table_default_features_leave_them_out_named_features_keep_them(tmp_path: Path) -> None:
    path = tmp_path / "clinic.csv"
    clinic().to_csv(path, index=False)
    with pytest.warns(UserWarning, match=r"left out of the default features .*'row_id' \(whole numbers, unique per "
                                         r"row: an identifier\); 'hba1c' \(a threshold on it separates the target: "
                                         r"single-column AUC 1\.000\); 'diagnosis' \(its value gives the target"):
        d = TableDataset(path=str(path), target="y", sensitive=["sex"]).load()
    assert d.meta["feature_names"] == ["bmi", "glucose", "steps"]
    with pytest.warns(UserWarning, match=r"feature column\(s\) named in params\.features look like target leakage or "
                                         r"row identifiers: 'hba1c' \(.*\)\. They are kept as asked"):
        named = TableDataset(path=str(path), target="y", sensitive=["sex"], features=["bmi", "hba1c"]).load()
    assert named.meta["feature_names"] == ["bmi", "hba1c"]


SPEC = textwrap.dedent("""\
    name: leak
    seed: 0
    dataset:
      name: table
      params: {{path: clinic.csv, target: y, sensitive: [sex]{features}}}
    attributes: [sex]
    model: {{name: logistic}}
    metrics: [group_metrics]
    split: {{test_size: 0.4, val_size: 0.0}}
    statistics: {{n_boot: 0, n_permutations: 0, min_group_size: 5}}
    report: {{formats: [html]}}
    """)


def _audit_auc(tmp_path: Path, name: str, features: str) -> tuple[float, str]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(SPEC.format(features=features))
    result = CliRunner().invoke(app, ["run", str(spec), "-o", str(tmp_path / name)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = json.loads(next((tmp_path / name).rglob("result.json")).read_text(encoding="utf-8"))
    baseline = next(a for a in run["arms"] if a["kind"] == "baseline")
    auc = next(m["value"] for m in baseline["metrics"] if m["metric"] == "roc_auc")
    return float(auc), result.output + "\n".join(run["warnings"])


def test_downstream_audit_is_not_fooled_by_the_raw_label(tmp_path: Path) -> None:
    """Default features: the audit's logistic task AUC reflects the true signal (about 0.8), not the
    raw HbA1c; the same table with the raw column named as a feature gives AUC ~1."""
    clinic().to_csv(tmp_path / "clinic.csv", index=False)
    guarded, output = _audit_auc(tmp_path, "guarded", "")
    assert "left out of the default features" in output and "'hba1c'" in output
    assert 0.65 < guarded < 0.95, guarded
    leaky, output = _audit_auc(tmp_path, "leaky", ", features: [bmi, glucose, steps, hba1c]")
    assert "look like target leakage" in output
    assert leaky > 0.99, leaky
