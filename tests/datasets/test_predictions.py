"""predictions loader: scores as given or converted from logits, arms per column, validation rows,
and each bad score named by file, CSV line and column."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from fairaudit.builtin.datasets.predictions import PredictionsDataset, logistic
from fairaudit.errors import DataError
from fairaudit.testing import check_plugin


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    y = np.arange(n) % 2
    logit = 2.0 * (2 * y - 1) + rng.normal(0, 1.5, n)
    return pd.DataFrame({
        "pid": [f"p{i // 3}" for i in range(n)], "sex": rng.choice(["F", "M"], n),
        "race": np.where(np.arange(n) % 5 == 0, "NA", rng.choice(["A", "B"], n)),  # "NA" is a group
        "age": rng.uniform(20, 90, n).round(1), "y": y, "p": logistic(logit), "logit": logit,
        "margin": logit / 3, "fold": np.where(np.arange(n) % 4 == 0, "val", "test"),
    })


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "preds.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _loader(path: Path, **kw) -> PredictionsDataset:
    return PredictionsDataset(**{"path": str(path), "target": "y", "score": "p", "sensitive": ["sex", "race"],
                                 "patient_id": "pid", **kw})


def test_conformance() -> None:
    check_plugin(PredictionsDataset)


@pytest.mark.parametrize("name", ["preds.csv", "preds.parquet"])
def test_scores_labels_groups_as_given(tmp_path: Path, frame: pd.DataFrame, name: str) -> None:
    d = _loader(_write(tmp_path, frame, name)).load()
    assert d.modality == "scores" and d.X is None and d.images is None
    assert list(d.scores) == ["p"]
    np.testing.assert_array_equal(d.scores["p"], frame["p"].to_numpy())  # a CSV round-trip is exact
    np.testing.assert_array_equal(d.y, frame["y"])
    assert set(d.sensitive["race"]) == {"A", "B", "NA"}  # literal, as in `table`
    assert len(np.unique(d.patient_ids)) == 20
    assert len(d.meta["val_rows"]) == 0
    sub = d.subset(np.array([3, 1]))
    np.testing.assert_array_equal(sub.scores["p"], frame["p"].to_numpy()[[3, 1]])
    with pytest.raises(DataError, match="scores only"):
        _ = d.inputs


def test_several_score_columns_are_arms_in_order(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame["q"] = frame["p"] ** 2
    d = _loader(_write(tmp_path, frame), score={"new": "q", "old": "p"}).load()
    assert list(d.scores) == ["new", "old"]
    assert d.meta["score_columns"] == {"new": "q", "old": "p"}
    np.testing.assert_array_equal(d.scores["old"], frame["p"])


@pytest.mark.parametrize("kind", ["logit", "margin"])
def test_logits_and_margins_are_converted_with_the_boundary_at_half(tmp_path: Path, frame: pd.DataFrame,
                                                                   kind: str) -> None:
    frame.loc[:3, kind] = [0.0, -1e-300, 1e-300, -800.0]  # the boundary, both sides of it, and no overflow
    d = _loader(_write(tmp_path, frame, "preds.parquet"), score=kind, score_kind=kind).load()
    raw = frame[kind].to_numpy()
    s = d.scores[kind]
    assert np.all((s >= 0) & (s <= 1))
    np.testing.assert_array_equal(s >= 0.5, raw >= 0)  # decisions at 0.5 are the model's at 0
    np.testing.assert_allclose(s, expit(raw), rtol=1e-12, atol=1e-300)
    assert np.all(np.diff(s[np.argsort(raw, kind="stable")]) >= 0)  # order (and so every AUC) kept


def test_split_column_marks_validation_rows(tmp_path: Path, frame: pd.DataFrame) -> None:
    d = _loader(_write(tmp_path, frame), split_column="fold").load()
    np.testing.assert_array_equal(d.meta["val_rows"], np.flatnonzero(frame["fold"] == "val"))
    frame["fold"] = "val"
    with pytest.raises(DataError, match="every row has fold = 'val': no test rows"):
        _loader(_write(tmp_path, frame), split_column="fold").load()


def test_positive_label_and_bins_as_in_table(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame["outcome"] = np.where(frame["y"] == 1, "sick", "well")
    d = _loader(_write(tmp_path, frame), target="outcome", positive_label="sick", sensitive=["sex", "age"],
                bins={"age": {"edges": [0, 50, 120], "labels": ["<50", "50+"]}}).load()
    np.testing.assert_array_equal(d.y, frame["y"])
    assert set(d.sensitive["age"]) == {"<50", "50+"}


def test_probability_out_of_range_names_file_line_and_column(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.loc[7, "p"] = 1.7
    frame.loc[12, "p"] = -0.2
    path = _write(tmp_path, frame)
    with pytest.raises(DataError) as err:
        _loader(path).load()
    msg = str(err.value)
    assert msg.startswith(f"{path}: score column 'p' has 2 value(s) outside [0, 1] (from -0.2 to 1.7), "
                          "the first 1.7 at CSV line 9")
    assert "set score_kind: logit (or margin)" in msg


def test_missing_and_text_scores_name_their_line(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame["p"] = frame["p"].astype(object)
    frame.loc[4, "p"] = None
    with pytest.raises(DataError, match=re.escape("score column 'p' has 1 missing value(s) (empty or NaN), "
                                                  "the first at CSV line 6")):
        _loader(_write(tmp_path, frame)).load()
    frame.loc[4, "p"] = "high"
    with pytest.raises(DataError, match=re.escape("score column 'p' holds 1 value(s) that are not numbers, "
                                                  "the first 'high' at CSV line 6")):
        _loader(_write(tmp_path, frame)).load()


def test_parquet_errors_name_the_row(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.loc[5, "p"] = np.nan
    with pytest.raises(DataError, match=r"preds\.parquet: score column 'p' has 1 missing value\(s\).*at row 5"):
        _loader(_write(tmp_path, frame, "preds.parquet")).load()


def test_check_reads_the_header_only(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = _write(tmp_path, frame)
    assert _loader(path).check(tmp_path) == []
    problems = _loader(path, score={"a": "p", "b": "pp"}, split_column="folds").check(tmp_path)
    assert any("no column 'pp' (score of arm 'b')" in p and "Did you mean 'p'" in p for p in problems)
    assert any("no column 'folds' (split_column)" in p for p in problems)
    assert _loader(path, score={}).check(tmp_path)[0].startswith("score: give a column")
