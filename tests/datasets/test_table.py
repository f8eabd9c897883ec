"""table loader: CSV / zipped CSV / Parquet / NPZ, header-only checks, and each error case."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairaudit.builtin.datasets.table import TableDataset
from fairaudit.errors import DataError
from fairaudit.plugins import load_plugins
from fairaudit.testing import check_plugin

SHARED = Path(os.environ.get("FAIRAUDIT_SHARED_DATA",
                             Path(__file__).resolve().parents[2].parent / "shared" / "data"))
DIABETES = SHARED / "diabetes-130-us-hospitals" / "dataset_diabetes.zip"


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame({
        "pid": [f"p{i // 2}" for i in range(n)],
        "sex": rng.choice(["F", "M"], n),
        "race": rng.choice(["A", "B"], n),
        "age": rng.uniform(30, 80, n).round(1),
        "label": np.arange(n) % 2,
        "outcome": np.where(np.arange(n) % 2 == 1, "yes", "no"),
    })
    for j in range(3):
        df[f"emb_{j}"] = rng.normal(size=n).round(3)
    return df


@pytest.fixture
def csv_file(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


def _loader(path: Path | str, **kw) -> TableDataset:
    params = {"path": str(path), "target": "label", "sensitive": ["sex", "race"],
              "features": "emb_", "patient_id": "pid"}
    return TableDataset(**{**params, **kw})


def test_csv_round_trip(csv_file: Path, frame: pd.DataFrame) -> None:
    d = _loader(csv_file, extras=["age"]).load()
    np.testing.assert_allclose(d.X, frame[["emb_0", "emb_1", "emb_2"]].to_numpy(), rtol=1e-6)
    np.testing.assert_array_equal(d.y, frame["label"])
    assert list(d.sensitive.columns) == ["sex", "race"]
    assert (d.sensitive["sex"].to_numpy() == frame["sex"].to_numpy()).all()
    assert len(np.unique(d.patient_ids)) == 20
    np.testing.assert_allclose(d.extras["age"], frame["age"])
    assert d.meta["feature_names"] == ["emb_0", "emb_1", "emb_2"]


@pytest.mark.parametrize("features", ["emb_*", ["emb_0", "emb_1", "emb_2"], "emb_"])
def test_feature_selection_forms(csv_file: Path, features) -> None:
    assert _loader(csv_file, features=features).load().X.shape == (40, 3)


def test_default_features_are_the_other_columns_one_hot(csv_file: Path) -> None:
    """Every other column, text one-hot, less the raw label ``outcome`` and the patient ids."""
    with pytest.warns(UserWarning, match=r"left out of the default features .*'pid' \(20 distinct values in 40 "
                      r"rows: an identifier or free text\); 'outcome' \(its value gives the target exactly: "
                      r"'no' -> 0, 'yes' -> 1\)"):
        d = TableDataset(path=str(csv_file), target="label", sensitive=["sex"]).load()
    names = d.meta["feature_names"]
    assert "label" not in names and "sex" not in names
    assert "age" in names and "race=A" in names and "emb_0" in names
    assert not any(n.startswith(("outcome", "pid")) for n in names)
    assert d.X.shape == (40, len(names))


def test_positive_label_for_string_targets(csv_file: Path) -> None:
    d = _loader(csv_file, target="outcome", positive_label="yes").load()
    np.testing.assert_array_equal(d.y, np.arange(40) % 2)
    both = _loader(csv_file, target="outcome", positive_label=["yes", "no"]).load()
    assert both.y.all()


def test_parquet_npz_zip_and_embedding_column(tmp_path: Path, frame: pd.DataFrame) -> None:
    parquet = tmp_path / "t.parquet"
    frame.to_parquet(parquet)
    from_parquet = _loader(parquet).load()
    frame.to_csv(tmp_path / "inner.csv", index=False)
    zipped = tmp_path / "t.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(tmp_path / "inner.csv", "folder/inner.csv")
    from_zip = _loader(zipped).load()
    np.testing.assert_allclose(from_parquet.X, from_zip.X)
    # a column of vectors (Parquet list column and CSV strings)
    vec = frame.assign(vec=[row.tolist() for row in frame[["emb_0", "emb_1", "emb_2"]].to_numpy()])
    vec.drop(columns=["emb_0", "emb_1", "emb_2"]).to_parquet(tmp_path / "v.parquet")
    emb = _loader(tmp_path / "v.parquet", features=None, embedding_column="vec").load()
    np.testing.assert_allclose(emb.X, from_parquet.X)
    vec.assign(vec=vec["vec"].map(str)).drop(columns=["emb_0"]).to_csv(tmp_path / "v.csv",
                                                                        index=False)
    emb_csv = _loader(tmp_path / "v.csv", features=None, embedding_column="vec").load()
    np.testing.assert_allclose(emb_csv.X, from_parquet.X, rtol=1e-6)
    npz = tmp_path / "t.npz"
    np.savez(npz, X=frame[["emb_0", "emb_1", "emb_2"]].to_numpy(), label=frame["label"].to_numpy(),
             sex=frame["sex"].to_numpy().astype(str), race=frame["race"].to_numpy().astype(str),
             pid=frame["pid"].to_numpy().astype(str))
    from_npz = _loader(npz, features="X").load()
    np.testing.assert_allclose(from_npz.X, from_parquet.X)
    assert _loader(npz, features="X").check(tmp_path) == []


def test_check_reads_only_the_header(tmp_path: Path, csv_file: Path) -> None:
    assert _loader(csv_file).check(tmp_path) == []
    # a header followed by garbage still passes the static check (the data are not read) ...
    broken = tmp_path / "broken.csv"
    broken.write_text(csv_file.read_text().splitlines()[0] + "\n" + '"unterminated\n' * 3)
    assert _loader(broken).check(tmp_path) == []
    problems = _loader(broken, target="lable").check(tmp_path)
    assert len(problems) == 1 and "'lable'" in problems[0] and "Did you mean 'label'" in problems[0]


def test_resolve_makes_paths_absolute(tmp_path: Path, csv_file: Path) -> None:
    loader = _loader("table.csv").resolve(tmp_path)
    assert Path(loader.path) == csv_file.resolve()
    assert loader.load().X.shape == (40, 3)


# ------------------------------------------------------------------------ error cases
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found.*nope\.csv"):
        _loader(tmp_path / "nope.csv").load()
    assert "not found" in _loader(tmp_path / "nope.csv").check(tmp_path)[0]


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv is empty"):
        _loader(empty).load()
    header_only = tmp_path / "header.csv"
    header_only.write_text("pid,sex,race,label,emb_0\n")
    with pytest.raises(DataError, match="header but no data rows"):
        _loader(header_only).load()


def test_typo_column_suggests(csv_file: Path) -> None:
    with pytest.raises(DataError, match=r"no column 'sexx' \(sensitive attribute\)\. "
                                        r"Did you mean 'sex'") as info:
        _loader(csv_file, sensitive=["sexx"]).load()
    assert str(csv_file) in str(info.value)
    with pytest.raises(DataError, match="match no column"):
        _loader(csv_file, features="feat_").load()


def test_non_binary_target(csv_file: Path, tmp_path: Path, frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"'outcome' is not binary.*positive_label"):
        _loader(csv_file, target="outcome").load()
    frame.assign(label=np.arange(40) % 3).to_csv(tmp_path / "three.csv", index=False)
    with pytest.raises(DataError, match="found 3 value"):
        _loader(tmp_path / "three.csv").load()
    with pytest.raises(DataError, match="positive_label 'maybe' never occurs"):
        _loader(csv_file, target="outcome", positive_label="maybe").load()


def test_nan_in_features_names_column_and_line(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.loc[6, "emb_1"] = np.nan
    frame.to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(DataError, match=r"'emb_1' \(1\) have missing values.*CSV line 8"):
        _loader(tmp_path / "nan.csv").load()


def test_nan_in_sensitive_becomes_missing_group(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.loc[[3, 9], "race"] = np.nan
    frame.to_csv(tmp_path / "nan_group.csv", index=False)
    with pytest.warns(UserWarning, match="'race' has 2 missing"):
        d = _loader(tmp_path / "nan_group.csv").load()
    assert (d.sensitive["race"] == "(missing)").sum() == 2
    assert d.sensitive["race"].notna().all()


def test_zip_with_several_csvs_needs_member(tmp_path: Path, csv_file: Path) -> None:
    zipped = tmp_path / "two.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(csv_file, "a.csv")
        zf.write(csv_file, "b.csv")
    with pytest.raises(DataError, match="holds 2 CSV files"):
        _loader(zipped).load()
    assert _loader(zipped, member="b.csv").load().X.shape == (40, 3)


def test_registered_and_conformant() -> None:
    assert load_plugins(autoload=False).datasets.get("table") is TableDataset
    check_plugin(TableDataset)


@pytest.mark.shared_data
@pytest.mark.skipif(not DIABETES.exists(), reason=f"{DIABETES} not found")
def test_diabetes_zip() -> None:
    loader = TableDataset(
        path=str(DIABETES), member="diabetic_data.csv", target="readmitted", positive_label="<30",
        sensitive=["race", "gender", "age"], patient_id="patient_nbr", na_values=["?"],
        features=["time_in_hospital", "num_lab_procedures", "num_procedures", "num_medications",
                  "number_outpatient", "number_emergency", "number_inpatient",
                  "number_diagnoses", "A1Cresult"])
    assert loader.check(DIABETES.parent) == []
    with pytest.warns(UserWarning, match="'race' has 2273 missing"):
        d = loader.load()
    assert len(d) == 101766 and d.X.shape[1] == 8 + 4  # A1Cresult one-hot incl. "(missing)"
    assert int(d.y.sum()) == 11357  # readmitted "<30" (SOURCE.md)
    counts = d.sensitive["race"].value_counts()
    assert counts["Caucasian"] == 76099 and counts["(missing)"] == 2273
    assert set(d.sensitive["gender"]) == {"Female", "Male", "Unknown/Invalid"}
    assert d.sensitive["age"].nunique() == 10
    assert len(np.unique(d.patient_ids)) < len(d)  # repeated encounters per patient
