"""Groups as users have them: ``bins:`` on every loader, the "looks continuous" warning, and NA /
None / null kept as group and target values (only empty cells are missing)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairaudit.builtin.datasets._groups import apply_bins, default_labels, warn_if_continuous
from fairaudit.builtin.datasets.embeddings_npy import EmbeddingsNpyDataset
from fairaudit.builtin.datasets.image_folder import ImageFolderDataset
from fairaudit.builtin.datasets.image_npz import ImageNpzDataset
from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR
from fairaudit.builtin.datasets.synthetic_embeddings import SyntheticEmbeddings
from fairaudit.builtin.datasets.table import TableDataset
from fairaudit.errors import DataError

EDGES = [0, 50, 65, 120]
LABELS = ["<50", "50-64", "65+"]


def expected_bins(age: np.ndarray, labels: list[str]) -> np.ndarray:
    """Bins [0, 50), [50, 65), [65, 120] written out by hand."""
    return np.where(age < 50, labels[0], np.where(age < 65, labels[1], labels[2])).astype(object)


@pytest.fixture
def people(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """200 rows: integer ages 18..104 (boundary values 50, 65 and 120 included), sex, target, features."""
    rng = np.random.default_rng(5)
    n = 200
    age = rng.integers(18, 105, n)
    age[:3] = [50, 65, 120]
    frame = pd.DataFrame({"pid": [f"p{i}" for i in range(n)], "sex": rng.choice(["F", "M"], n), "age": age,
                          "f0": rng.normal(size=n).round(3), "f1": rng.normal(size=n).round(3),
                          "y": rng.integers(0, 2, n)})
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _table(path: Path, **kw) -> TableDataset:
    return TableDataset(**{"path": str(path), "target": "y", "sensitive": ["sex", "age"], "features": ["f0", "f1"],
                           "patient_id": "pid", **kw})


def test_bins_with_labels_are_the_groups(people: tuple[Path, pd.DataFrame]) -> None:
    path, frame = people
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # binned: no "looks continuous" warning
        d = _table(path, bins={"age": {"edges": EDGES, "labels": LABELS}}).load()
    np.testing.assert_array_equal(d.sensitive["age"].to_numpy(), expected_bins(frame["age"].to_numpy(), LABELS))
    assert d.sensitive["age"].iloc[:3].tolist() == ["50-64", "65+", "65+"]  # left-closed; the last bin closed
    plain = _table(path, bins={"age": EDGES}).load()
    assert set(plain.sensitive["age"]) == {"[0, 50)", "[50, 65)", "[65, 120]"}
    np.testing.assert_array_equal(plain.sensitive["age"].to_numpy(),
                                  expected_bins(frame["age"].to_numpy(), default_labels(EDGES)))


def test_open_ended_edges_and_their_labels() -> None:
    ages = pd.Series([1.0, 49.9, 50.0, 200.0])
    assert default_labels([-np.inf, 50, np.inf]) == ["<50", ">=50"]
    assert apply_bins(ages, "age", [-np.inf, 50, np.inf], "t").tolist() == ["<50", "<50", ">=50", ">=50"]


def test_values_outside_the_edges_name_the_attribute_and_count(people: tuple[Path, pd.DataFrame]) -> None:
    path, frame = people
    n_out = int(((frame["age"] < 30) | (frame["age"] > 90)).sum())
    with pytest.raises(DataError, match=rf"people\.csv: bins\['age'\]: {n_out} value\(s\) of 'age' lie outside the "
                                        rf"edges \[30, 90\] \(from 18 to 120\); .*-\.inf or \.inf"):
        _table(path, bins={"age": [30, 60, 90]}).load()


def test_na_tokens_in_a_binned_column_are_missing_and_text_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("sex,age,f0,y\nF,30,0.1,0\nM,NA,0.2,1\nF,,0.3,0\nM,70,0.4,1\n")
    with pytest.warns(UserWarning, match=r"sensitive column 'age' has 2 missing value\(s\)"):
        d = TableDataset(path=str(path), target="y", sensitive=["sex", "age"], features=["f0"],
                         bins={"age": EDGES}).load()
    assert d.sensitive["age"].tolist() == ["[0, 50)", "(missing)", "(missing)", "[65, 120]"]
    path.write_text("sex,age,f0,y\nF,30,0.1,0\nM,old,0.2,1\n")
    with pytest.raises(DataError, match=r"bins\['age'\]: 1 value\(s\) of 'age' are not numbers \(e\.g\. 'old'\)"):
        TableDataset(path=str(path), target="y", sensitive=["sex", "age"], features=["f0"], bins={"age": EDGES}).load()


@pytest.mark.parametrize(("bins", "problem"), [
    ({"age": [0, 65, 50, 120]}, r"bins\['age'\]: the edges must increase strictly, but 65 is followed by 50"),
    ({"age": [50]}, r"bins\['age'\]: give at least two edges"),
    ({"age": {"edges": EDGES, "labels": ["a", "b"]}}, r"4 edges make 3 bins but 2 labels are given"),
    ({"age": {"edges": EDGES, "labels": ["a", "a", "b"]}}, r"the labels must be distinct and non-empty"),
    ({"agee": EDGES}, r"bins\['agee'\]: 'agee' is not one of the sensitive columns \['sex', 'age'\]"),
])
def test_check_flags_bad_bins_statically(people: tuple[Path, pd.DataFrame], bins: dict, problem: str) -> None:
    path, _ = people
    problems = _table(path, bins=bins).check(path.parent)
    assert any(re.search(problem, p) for p in problems), problems
    with pytest.raises(DataError, match=problem):
        _table(path, bins=bins).load()


def test_bins_on_every_loader(tmp_path: Path, people: tuple[Path, pd.DataFrame]) -> None:
    """embeddings_npy, image_folder, image_npz and the synthetic loaders cut the same ages alike."""
    from PIL import Image

    _, frame = people
    n = 24
    small = frame.iloc[:n].reset_index(drop=True)
    want = expected_bins(small["age"].to_numpy(), LABELS)
    bins = {"age": {"edges": EDGES, "labels": LABELS}}
    np.save(tmp_path / "emb.npy", np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32))
    rows = small.assign(path=[f"i{i}.png" for i in range(n)])
    rows.to_csv(tmp_path / "meta.csv", index=False)
    for i in range(n):
        Image.fromarray(np.full((8, 8), 10 * i, np.uint8)).save(tmp_path / f"i{i}.png")
    np.savez(tmp_path / "pack.npz", images=np.zeros((n, 8, 8), np.uint8))
    common = {"target": "y", "sensitive": ["sex", "age"], "bins": bins}
    loaders = [EmbeddingsNpyDataset(features=str(tmp_path / "emb.npy"), metadata=str(tmp_path / "meta.csv"), **common),
               ImageFolderDataset(metadata=str(tmp_path / "meta.csv"), image_size=8, **common),
               ImageNpzDataset(path=str(tmp_path / "pack.npz"), index=str(tmp_path / "meta.csv"), image_size=8,
                               **common)]
    for loader in loaders:
        assert loader.check(tmp_path) == [], loader.name
        np.testing.assert_array_equal(loader.load().sensitive["age"].to_numpy(), want, err_msg=loader.name)
    for cls, params in ((SyntheticEmbeddings, {"n_samples": 300, "dim": 16}),
                        (SyntheticCXR, {"n_samples": 40, "image_size": 32})):
        d = cls(**params, bins={"age": [0, 50, 65, 120]}).load()
        np.testing.assert_array_equal(d.sensitive["age"].to_numpy(),
                                      expected_bins(d.extras["age"], default_labels(EDGES)))
        assert "age_group" in d.sensitive  # the fixed groups stay
        assert cls(bins={"sex": EDGES}).check(tmp_path) == [
            "bins['sex']: 'sex' is not one of the continuous attributes ['age']"]


def test_continuous_attribute_warns_once_suggesting_bins(people: tuple[Path, pd.DataFrame]) -> None:
    path, frame = people
    distinct = frame["age"].nunique()
    with pytest.warns(UserWarning) as caught:
        d = _table(path).load()
    hits = [str(w.message) for w in caught if "looks continuous" in str(w.message)]
    assert len(hits) == 1, hits
    assert (f"sensitive attribute 'age' looks continuous ({distinct} distinct numeric values in 200 rows)" in hits[0]
            and "`bins: {age: [" in hits[0])
    assert d.sensitive["age"].nunique() == distinct  # warned, not changed
    assert "sex" not in hits[0]


def test_the_continuous_threshold() -> None:
    """More than 20 distinct numbers and more than 5 % of the rows; text, booleans and codes are not."""
    def warns(values: list | np.ndarray) -> bool:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warned = warn_if_continuous(pd.Series(values), "a", "t")
        assert warned == bool(caught)
        return warned

    assert warns(np.arange(21.0))
    assert not warns(np.arange(20.0))  # 20 values: groups, not a continuum
    assert not warns(np.tile(np.arange(25), 40))  # 25 values in 1000 rows (2.5 %)
    assert warns(np.tile(np.arange(60), 10))  # 60 in 600 (10 %)
    assert not warns([f"site{i}" for i in range(50)])
    assert not warns([str(i) for i in range(49)] + ["unknown"])
    assert warns([str(i) for i in range(50)])  # numbers read as text still look continuous


def test_na_none_null_are_values_of_groups_and_target(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    lines = ["sex,race,result,lab,y"]
    values = [("F", "NA", "High", "1.5"), ("M", "None", "None", "2.5"), ("NA", "null", "High", "NA"),
              ("", "A", "None", "0.5"), ("F", "None", "High", "1.0"), ("M", "NA", "None", "2.0")]
    for i, (sex, race, result, lab) in enumerate(values):
        lines.append(f"{sex},{race},{result},{lab},{i % 2}")
    path.write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match=r"'sex' has 1 missing value"):
        d = TableDataset(path=str(path), target="result", positive_label="High", sensitive=["sex", "race"],
                         features=["y"]).load()
    assert d.sensitive["sex"].tolist() == ["F", "M", "NA", "(missing)", "F", "M"]
    assert d.sensitive["race"].tolist() == ["NA", "None", "null", "A", "None", "NA"]
    assert d.y.tolist() == [1, 0, 1, 0, 1, 0]
    # "None" as a target value is a value (not binary 0/1 without positive_label)
    with pytest.raises(DataError, match=r"target 'result' is not binary 0/1: found 2 value\(s\) \['High', 'None'\]"):
        TableDataset(path=str(path), target="result", sensitive=["sex"], features=["y"]).load()
    # a numeric feature column still reads NA as missing (a number column with a gap)
    with pytest.raises(DataError, match=r"feature column\(s\) 'lab' \(1\) have missing values \(NaN\), first at CSV "
                                        r"line 4"):
        TableDataset(path=str(path), target="y", sensitive=["sex"], features=["lab"]).load()
    # na_values says more: "NA" is missing everywhere then
    with pytest.warns(UserWarning, match=r"'race' has 2 missing value"):
        d = TableDataset(path=str(path), target="result", positive_label="High", sensitive=["race"],
                         features=["y"], na_values=["NA"]).load()
    assert d.sensitive["race"].tolist() == ["(missing)", "None", "null", "A", "None", "(missing)"]


def test_image_metadata_keeps_none_as_a_group(tmp_path: Path) -> None:
    from PIL import Image

    rows = []
    for i in range(4):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{i % 2},{['None', 'F', 'null', 'F'][i]}")
    (tmp_path / "meta.csv").write_text("path,y,sex\n" + "\n".join(rows) + "\n")
    d = ImageFolderDataset(metadata=str(tmp_path / "meta.csv"), target="y", sensitive=["sex"], image_size=8).load()
    assert d.sensitive["sex"].tolist() == ["None", "F", "null", "F"]
