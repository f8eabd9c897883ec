"""image_folder and image_npz: decoding, resizing, modes, masks, filters, and each error case."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fairaudit.builtin.datasets.image_folder import ImageFolderDataset
from fairaudit.builtin.datasets.image_npz import ImageNpzDataset
from fairaudit.builtin.datasets.image_npz import write_example as write_npz_example
from fairaudit.errors import DataError
from fairaudit.plugins import load_plugins
from fairaudit.testing import check_plugin

SHARED = Path(os.environ.get("FAIRAUDIT_SHARED_DATA",
                             Path(__file__).resolve().parents[2].parent / "shared" / "data"))
COVID = SHARED / "covid-chestxray-dataset"
# row 4 of the folder fixture has no sex on purpose: its "(missing)" warning is tested once
pytestmark = pytest.mark.filterwarnings("ignore:.*missing value:UserWarning")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Six images of mixed sizes and modes (L, RGB, RGBA, 16-bit, palette) with metadata."""
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    specs = [("L", (40, 40)), ("RGB", (50, 30)), ("RGBA", (32, 32)), ("I;16", (40, 40)),
             ("P", (24, 36)), ("L", (64, 48))]
    rows = []
    for i, (mode, size) in enumerate(specs):
        level = 60 + 120 * (i % 2)
        arr = np.clip(rng.normal(level, 10, size[::-1]), 0, 255).astype(np.uint8)
        if mode == "I;16":
            img = Image.fromarray(arr.astype(np.uint16) * 257)
        else:
            img = Image.fromarray(arr, mode="L").convert(mode)
        img.save(tmp_path / "imgs" / f"{i}.png")
        mask = np.zeros(size[::-1], np.uint8)
        mask[: size[1] // 2] = 255
        Image.fromarray(mask).save(tmp_path / "imgs" / f"{i}_mask.png")
        rows.append({"path": f"imgs/{i}.png", "mask": f"imgs/{i}_mask.png", "y": i % 2,
                     "sex": "FM"[i % 2] if i != 4 else None, "view": ["PA", "AP"][i // 3],
                     "pid": f"p{i // 2}"})
    pd.DataFrame(rows).to_csv(tmp_path / "meta.csv", index=False)
    return tmp_path


def _folder_loader(folder: Path, **kw) -> ImageFolderDataset:
    params = {"metadata": str(folder / "meta.csv"), "target": "y", "sensitive": ["sex"],
              "patient_id": "pid", "image_size": 16}
    return ImageFolderDataset(**{**params, **kw})


def test_mixed_sizes_and_modes_are_normalised(folder: Path) -> None:
    with pytest.warns(UserWarning, match="'sex' has 1 missing"):
        d = _folder_loader(folder, mask_column="mask", extras=["view"]).load()
    assert d.images.shape == (6, 1, 16, 16) and d.images.dtype == np.float32
    assert 0.0 <= d.images.min() and d.images.max() <= 1.0
    means = d.images.mean(axis=(1, 2, 3))
    assert (means[1::2] > means[0::2]).all()  # the label-1 images are brighter (every mode)
    assert d.sensitive["sex"].tolist()[4] == "(missing)"
    assert d.masks.shape == (6, 16, 16)
    np.testing.assert_array_equal(d.masks[:, :8], 1)
    np.testing.assert_array_equal(d.masks[:, 8:], 0)
    assert d.extras["view"].tolist() == ["PA"] * 3 + ["AP"] * 3
    assert len(np.unique(d.patient_ids)) == 3
    rgb = _folder_loader(folder, grayscale=False, image_size=8).load()
    assert rgb.images.shape == (6, 3, 8, 8)


def test_include_exclude_and_resize_modes(folder: Path) -> None:
    d = _folder_loader(folder, include={"view": ["AP"]}, exclude={"pid": ["p2"]},
                       resize="pad").load()
    assert len(d) == 1 and d.patient_ids.tolist() == ["p1"]
    assert d.meta["csv_lines"].tolist() == [5]
    cropped = _folder_loader(folder, resize="crop", max_images=2, sensitive=["view"]).load()
    assert cropped.images.shape == (2, 1, 16, 16)


def test_check_is_static(folder: Path) -> None:
    assert _folder_loader(folder).check(folder) == []
    loader = _folder_loader(folder, sensitive=["sexx"], root=str(folder / "nowhere"))
    problems = loader.check(folder)
    assert any("Did you mean 'sex'" in p for p in problems)
    assert any("root folder not found" in p for p in problems)


def test_relative_paths_resolve_against_spec_folder(folder: Path) -> None:
    loader = _folder_loader(folder, metadata="meta.csv").resolve(folder)
    assert Path(loader.metadata).is_absolute()
    assert len(loader.load()) == 6


def test_missing_image_names_csv_line(folder: Path) -> None:
    (folder / "imgs" / "3.png").unlink()
    with pytest.raises(DataError, match=r"1 image file\(s\) not found: line 5: .*3\.png"):
        _folder_loader(folder).load()


def test_unreadable_image_names_csv_line(folder: Path) -> None:
    (folder / "imgs" / "2.png").write_bytes(b"this is not a png")
    with pytest.raises(DataError, match=r"CSV line 4: cannot read image .*2\.png"):
        _folder_loader(folder).load()


def test_metadata_errors(folder: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        _folder_loader(folder, metadata=str(folder / "none.csv")).load()
    with pytest.raises(DataError, match=r"no column 'label' \(target\)"):
        _folder_loader(folder, target="label").load()
    with pytest.raises(DataError, match="is not binary"):
        _folder_loader(folder, target="view").load()
    (folder / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        _folder_loader(folder, metadata=str(folder / "empty.csv")).load()


# ------------------------------------------------------------------------ image_npz
def test_npz_pack_with_masks_and_index(tmp_path: Path) -> None:
    npz, index = write_npz_example(tmp_path)
    frame = pd.read_csv(index)
    frame.iloc[::-1].to_csv(tmp_path / "reversed.csv", index=False)  # rows out of array order
    d = ImageNpzDataset(path=str(npz), index=str(tmp_path / "reversed.csv"), target="label",
                        sensitive=["sex"], index_column="npz_index", masks_key="masks",
                        image_size=10).load()
    with np.load(npz) as packed:
        images = packed["images"]
    np.testing.assert_array_equal(d.meta["array_rows"], np.arange(10)[::-1])
    np.testing.assert_array_equal(d.y, frame["label"].to_numpy()[::-1])
    # resizing keeps each image's brightness (and so the row order is the index's)
    np.testing.assert_allclose(d.images.mean((1, 2, 3)), images[::-1].mean((1, 2)) / 255.0,
                               atol=0.01)
    assert d.masks.shape == (10, 10, 10) and d.masks[:, 3:7, 2:4].all()
    keep = ImageNpzDataset(path=str(npz), index=str(index), target="label", sensitive=["sex"],
                           image_size=None).load()
    np.testing.assert_allclose(keep.images[:, 0], images / 255.0, atol=1e-6)


def test_npz_errors(tmp_path: Path) -> None:
    npz, index = write_npz_example(tmp_path)
    base = {"path": str(npz), "index": str(index), "target": "label", "sensitive": ["sex"]}
    with pytest.raises(DataError, match="no array 'pixels'"):
        ImageNpzDataset(**base, images_key="pixels").load()
    assert "no array 'pixels'" in ImageNpzDataset(**base, images_key="pixels").check(tmp_path)[0]
    frame = pd.read_csv(index)
    frame.assign(npz_index=frame["npz_index"] + 5).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="CSV line 7 points at image 10"):
        ImageNpzDataset(**{**base, "index": str(tmp_path / "bad.csv")},
                        index_column="npz_index").load()


def test_registered_and_conformant() -> None:
    datasets = load_plugins(autoload=False).datasets
    assert datasets.get("image_folder") is ImageFolderDataset
    assert datasets.get("image_npz") is ImageNpzDataset
    check_plugin(ImageFolderDataset)
    check_plugin(ImageNpzDataset)


@pytest.mark.shared_data
@pytest.mark.skipif(not (COVID / "covid_cxr_256.npz").exists(), reason=f"{COVID} not found")
def test_covid_chestxray_pack() -> None:
    loader = ImageNpzDataset(
        path=str(COVID / "covid_cxr_256.npz"), index=str(COVID / "covid_cxr_256_index.csv"),
        index_column="npz_index", target="finding", positive_label=["COVID-19", "COVID-19, ARDS"],
        exclude={"finding": ["todo"]}, include={"view": ["PA", "AP", "AP Supine"]},
        sensitive=["sex", "view"], patient_id="patientid", extras=["age"],
        masks_key="lung_masks", mask_value=1, image_size=64)
    assert loader.check(COVID) == []
    with pytest.warns(UserWarning, match="'sex' has"):
        d = loader.load()
    assert d.images.shape[1:] == (1, 64, 64) and d.masks.shape[1:] == (64, 64)
    assert set(d.sensitive["view"]) == {"PA", "AP", "AP Supine"}
    assert {"F", "M", "(missing)"} == set(d.sensitive["sex"])
    assert len(np.unique(d.patient_ids)) < len(d)
    index = pd.read_csv(COVID / "covid_cxr_256_index.csv")
    frontal = index[index["view"].isin(["PA", "AP", "AP Supine"]) & (index["finding"] != "todo")]
    assert len(d) == len(frontal)
    assert int(d.y.sum()) == int(frontal["finding"].isin(["COVID-19", "COVID-19, ARDS"]).sum())
    # masks exist exactly for the V7-annotated images (all COVID-positive, SOURCE.md)
    has_mask = d.masks.reshape(len(d), -1).any(1)
    assert has_mask.sum() == int(frontal["has_v7_lung_mask"].sum())
    assert d.y[has_mask].all()
