"""synthetic_cxr against its ground truth: oracle counterfactuals, masks, shortcut rates, speed."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from fairaudit.builtin.datasets._phantom import body_region, device_layer, render
from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR, device_oracle
from fairaudit.errors import DataError
from fairaudit.plugins import load_plugins
from fairaudit.testing import check_plugin


@pytest.fixture(scope="module")
def cxr():
    loader = SyntheticCXR(n_samples=160, image_size=64, seed=0, shortcut_strength=0.5)
    return loader, loader.load()


def test_shapes_ranges_columns(cxr) -> None:
    _, d = cxr
    assert d.images.shape == (160, 1, 64, 64) and d.images.dtype == np.float32
    assert d.images.min() >= 0.0 and d.images.max() <= 1.0
    assert d.masks.shape == (160, 64, 64) and d.masks.dtype == np.uint8
    assert set(np.unique(d.masks)) == {0, 1}
    assert list(d.sensitive.columns) == ["sex", "age_group"]
    assert set(d.extras) >= {"view", "device", "age"}
    assert set(np.unique(d.extras["view"])) == {0, 1}
    assert d.meta["counterfactual_factors"] == ["sex", "device", "view", "disease"]
    assert d.meta["artefact_oracle"] is device_oracle


def test_speed_512_images_at_64px() -> None:
    loader = SyntheticCXR(n_samples=512, image_size=64, seed=5)
    start = time.perf_counter()
    loader.load()
    elapsed = time.perf_counter() - start
    assert elapsed < 4.0, elapsed  # ~0.3 s on an idle core; generous for a loaded CI machine


def test_determinism() -> None:
    a = SyntheticCXR(n_samples=20, image_size=32, seed=1).load()
    b = SyntheticCXR(n_samples=20, image_size=32, seed=1).load()
    c = SyntheticCXR(n_samples=20, image_size=32, seed=2).load()
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.images, c.images)
    # a sample renders identically whatever batch it is drawn in
    d = SyntheticCXR(n_samples=40, image_size=32, seed=1).load()
    np.testing.assert_array_equal(d.images[:20], a.images)


def test_masks_inside_body_and_plausible(cxr) -> None:
    loader, d = cxr
    params, _ = loader.draw(np.arange(len(d)))
    body = body_region(params, 64) > 0.5
    assert not (d.masks.astype(bool) & ~body).any()
    fraction = d.masks.reshape(len(d), -1).mean(1)
    assert fraction.min() > 0.1 and fraction.max() < 0.4
    # each mask has a left and a right lung (columns on both sides of the midline)
    assert (d.masks[:, :, :30].sum((1, 2)) > 0).all() and (d.masks[:, :, 34:].sum((1, 2)) > 0).all()
    # men have larger lung fields
    male = (d.sensitive["sex"] == "M").to_numpy()
    assert fraction[male].mean() > fraction[~male].mean() * 1.05


def test_device_oracle_accuracy_on_rendered_images() -> None:
    for size in (32, 64, 128):
        d = SyntheticCXR(n_samples=150, image_size=size, seed=size, shortcut_strength=0.3).load()
        accuracy = (device_oracle(d.images) == d.extras["device"]).mean()
        assert accuracy >= 0.98, (size, accuracy)
        assert 0 < d.extras["device"].mean() < 1
    # works on (n, H, W) and a single (H, W) image too
    assert device_oracle(d.images[:, 0]).tolist() == device_oracle(d.images).tolist()
    assert device_oracle(d.images[0, 0]).shape == (1,)


def test_device_counterfactual_changes_only_the_device(cxr) -> None:
    loader, d = cxr
    rows = np.arange(40)
    cf = d.counterfactual("device", rows)
    params, _ = loader.draw(rows)
    flipped = params.with_values(device=1 - params.device)
    footprint = np.maximum(device_layer(params, 64), device_layer(flipped, 64)) > 0
    diff = cf[:, 0] != d.images[rows, 0]
    assert not (diff & ~footprint).any()
    assert diff.reshape(len(rows), -1).any(1).all()  # every image changed
    np.testing.assert_array_equal(device_oracle(cf), 1 - d.extras["device"][rows])
    _, masks_cf, _ = render(flipped, loader._style())
    np.testing.assert_array_equal(masks_cf, d.masks[rows])


def test_disease_counterfactual_changes_only_the_lungs(cxr) -> None:
    _, d = cxr
    rows = np.arange(40)
    cf = d.counterfactual("disease", rows)
    diff = np.abs(cf[:, 0] - d.images[rows, 0])
    lungs = d.masks[rows].astype(bool)
    near_lungs = binary_dilation(lungs, iterations=2, axes=(1, 2))
    assert diff[~near_lungs].max() < 1e-3  # only the soft lung edge leaks, and barely
    assert diff[lungs].sum() > 0.97 * diff.sum()
    per_image = diff.reshape(len(rows), -1).max(1)
    assert (per_image > 0.05).all()
    # brighter where the disease appears, darker where it is removed
    sign = np.where(d.extras["y_true"][rows] == 1, -1.0, 1.0)
    assert ((cf[:, 0] - d.images[rows, 0]).reshape(len(rows), -1).sum(1) * sign > 0).all()
    np.testing.assert_array_equal(device_oracle(cf), d.extras["device"][rows])


def test_sex_and_view_counterfactuals(cxr) -> None:
    loader, d = cxr
    rows = np.arange(30)
    params, _ = loader.draw(rows)
    for factor, field in (("sex", "male"), ("view", "view")):
        cf = d.counterfactual(factor, rows)
        flipped = params.with_values(**{field: 1 - getattr(params, field)})
        expected, masks_cf, _ = render(flipped, loader._style())
        np.testing.assert_array_equal(cf, expected)
        assert not np.array_equal(cf, d.images[rows])
        np.testing.assert_array_equal(device_oracle(cf), d.extras["device"][rows])
        if factor == "sex":  # the lung fields follow the sex
            male = params.male == 1
            area, area_cf = d.masks[rows].sum((1, 2)), masks_cf.sum((1, 2))
            assert (area_cf[male] < area[male]).all() and (area_cf[~male] > area[~male]).all()
    view = d.extras["view"][rows]
    assert (params.view == view).all()


def test_oracle_follows_subsets_and_pickles(cxr) -> None:
    _, d = cxr
    sub = d.subset(np.array([5, 17, 99]))
    np.testing.assert_array_equal(sub.counterfactual("device"),
                                  d.counterfactual("device", np.array([5, 17, 99])))
    again = pickle.loads(pickle.dumps(sub))
    np.testing.assert_array_equal(again.counterfactual("view"), sub.counterfactual("view"))
    with pytest.raises(DataError, match="cannot flip"):
        d.counterfactual("hair_colour", np.array([0]))


def test_shortcut_prevalences_match_params() -> None:
    d = SyntheticCXR(n_samples=4000, image_size=32, device_rate=0.3, shortcut_strength=0.6,
                     ap_rate=0.2, view_label_correlation=0.5).load()
    y, dev, view = d.y, d.extras["device"], d.extras["view"]
    assert dev[y == 1].mean() == pytest.approx(0.3 + 0.6 * 0.7, abs=0.035)
    assert dev[y == 0].mean() == pytest.approx(0.3 * 0.4, abs=0.03)
    assert view[y == 1].mean() == pytest.approx(0.2 + 0.5 * 0.8, abs=0.035)
    assert view[y == 0].mean() == pytest.approx(0.1, abs=0.03)
    assert d.meta["ground_truth"]["device_probability"]["y=1"] == pytest.approx(0.72)


def test_shortcut_limited_to_one_group() -> None:
    d = SyntheticCXR(n_samples=4000, image_size=32, device_rate=0.3, shortcut_strength=1.0,
                     shortcut_group="M").load()
    y, dev, male = d.y, d.extras["device"], (d.sensitive["sex"] == "M").to_numpy()
    assert dev[male & (y == 1)].mean() == 1.0 and dev[male & (y == 0)].mean() == 0.0
    assert dev[~male & (y == 1)].mean() == pytest.approx(0.3, abs=0.04)
    assert dev[~male & (y == 0)].mean() == pytest.approx(0.3, abs=0.04)


def test_label_rates_and_group_noise() -> None:
    d = SyntheticCXR(n_samples=4000, image_size=32, prevalence=0.4, label_group_correlation=0.2,
                     group_label_noise={"sex=F": 0.25}).load()
    male = (d.sensitive["sex"] == "M").to_numpy()
    y_true = d.extras["y_true"]
    assert y_true[male].mean() == pytest.approx(0.5, abs=0.03)
    assert y_true[~male].mean() == pytest.approx(0.3, abs=0.03)
    flipped = d.y != y_true
    assert flipped[~male].mean() == pytest.approx(0.25, abs=0.03)
    assert flipped[male].mean() == 0.0


def test_images_carry_disease_and_sex(probe_auc) -> None:
    d = SyntheticCXR(n_samples=400, image_size=32, seed=3).load()
    pooled = d.images[:, 0].reshape(400, 16, 2, 16, 2).mean((2, 4))
    assert probe_auc(pooled, d.extras["y_true"], C=1.0) > 0.8
    assert probe_auc(pooled, d.sensitive["sex"] == "M", C=1.0) > 0.8


def test_patients_share_anatomy() -> None:
    d = SyntheticCXR(n_samples=60, image_size=32, images_per_patient=3).load()
    assert len(np.unique(d.patient_ids)) == 20
    frame = d.sensitive.assign(pid=d.patient_ids, age=d.extras["age"], y=d.extras["y_true"])
    assert (frame.groupby("pid").nunique()[["sex", "age", "y"]] == 1).all().all()
    assert not np.array_equal(d.images[0], d.images[1])  # new noise, ribs, view per image


def test_check_and_errors() -> None:
    bad = SyntheticCXR(image_size=16, shortcut_strength=1.5, shortcut_group="X")
    problems = bad.check(Path("."))
    assert len(problems) == 3
    with pytest.raises(DataError, match="image_size"):
        bad.load()
    assert SyntheticCXR().check(Path(".")) == []


def test_registered_and_conformant() -> None:
    assert load_plugins(autoload=False).datasets.get("synthetic_cxr") is SyntheticCXR
    check_plugin(SyntheticCXR)


def test_underdiagnosis_fades_the_disease_in_one_group() -> None:
    """Ground truth: in the chosen group the opacities (image minus its disease-off counterfactual)
    are drawn at ``1 - strength`` of the contrast of the same rows without the regime; the other
    group's images are unchanged; a per-group classifier then detects the disease less well there."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    plain = SyntheticCXR(n_samples=400, image_size=32, seed=3)
    faint = SyntheticCXR(n_samples=400, image_size=32, seed=3, underdiagnosis_group="F", underdiagnosis_strength=0.7)
    a, b = plain.load(), faint.load()
    assert b.meta["ground_truth"]["underdiagnosis"]["group"] == "F"
    assert b.meta["ground_truth"]["underdiagnosis"]["visibility"] == pytest.approx(0.3)
    male = (b.sensitive["sex"] == "M").to_numpy()
    sick = b.extras["y_true"] == 1
    np.testing.assert_array_equal(a.images[male], b.images[male])
    rows = np.flatnonzero(sick & ~male)[:20]
    healthy = plain.render_counterfactual(rows, "disease")
    opac_plain = np.abs(a.images[rows] - healthy).sum()
    opac_faint = np.abs(b.images[rows] - faint.render_counterfactual(rows, "disease")).sum()
    assert opac_faint / opac_plain == pytest.approx(0.3, abs=0.05)
    # a sex counterfactual carries the contrast with it (a generator could undo the bias)
    # (flipped to men, the faint rows render exactly as without the regime)
    np.testing.assert_array_equal(faint.render_counterfactual(rows, "sex"), plain.render_counterfactual(rows, "sex"))
    pooled = b.images[:, 0].reshape(400, 16, 2, 16, 2).mean((2, 4)).reshape(400, -1)
    scores = cross_val_predict(LogisticRegression(C=1.0, max_iter=2000), pooled, b.extras["y_true"], cv=3,
                               method="predict_proba")[:, 1]
    auc_f = roc_auc_score(b.extras["y_true"][~male], scores[~male])
    auc_m = roc_auc_score(b.extras["y_true"][male], scores[male])
    assert auc_m - auc_f > 0.1, (auc_m, auc_f)
    with pytest.raises(DataError, match="underdiagnosis_group"):
        SyntheticCXR(underdiagnosis_group="X").load()
