"""The ``alphashift`` debiaser as a fairaudit plugin: contract, images and embeddings paths,
report sections, checkpoints, errors."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairaudit_alphashift import AlphaShiftDebiaser
from fairaudit_alphashift.evaluation import auc, reliance
from fairaudit_alphashift.phantoms import make_phantoms
from sklearn.exceptions import NotFittedError

from fairaudit import RunContext
from fairaudit.errors import DataError
from fairaudit.params import validate_params

TINY = AlphaShiftDebiaser.get_test_params()[0]


@pytest.fixture(scope="module")
def phantoms16():
    return make_phantoms(60, 16, seed=7, shortcut=True)


@pytest.fixture(scope="module")
def tiny_fitted(phantoms16):
    deb = AlphaShiftDebiaser(**TINY)
    return deb.fit(phantoms16.images, phantoms16.y, sensitive_features=phantoms16.sensitive)


# ---------------------------------------------------------------- plugin contract
def test_registers_through_the_entry_point_without_importing_torch() -> None:
    code = ("import sys; from fairaudit.plugins import load_plugins; ps = load_plugins(); "
            "cls = ps.debiasers.get('alphashift'); "
            "assert cls.__name__ == 'AlphaShiftDebiaser', cls; "
            "assert ps.debiasers.source('alphashift').distribution == 'fairaudit-alphashift'; "
            "assert 'torch' not in sys.modules, 'torch imported at registration'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_class_metadata_and_param_validation() -> None:
    assert AlphaShiftDebiaser.name == "alphashift"
    assert AlphaShiftDebiaser.modalities == frozenset({"images", "features"})
    ok = validate_params(AlphaShiftDebiaser, {"bias_attributes": ["view"], "alpha_max": "1.5",
                                              "sweep_alphas": [-1, 0, 1]})
    assert ok["alpha_max"] == 1.5 and ok["sweep_alphas"] == (-1.0, 0.0, 1.0)
    import pydantic

    with pytest.raises(pydantic.ValidationError):
        validate_params(AlphaShiftDebiaser, {"direction": "sideways"})
    with pytest.raises(pydantic.ValidationError):
        validate_params(AlphaShiftDebiaser, {"alpha_maxx": 1.0})


def test_conformance_kit() -> None:
    pytest.importorskip("fairaudit.builtin.datasets.synthetic_embeddings",
                        reason="the kit's tiny data needs the built-in synthetic datasets")
    from fairaudit.testing import check_debiaser

    check_debiaser(AlphaShiftDebiaser)


# ---------------------------------------------------------------- images path
def test_image_fit_transform_and_train_augmentation(tiny_fitted, phantoms16) -> None:
    deb, ph = tiny_fitted, phantoms16
    Z = deb.transform(ph.images)
    assert Z.shape == (60, TINY["latent_dim"]) and Z.dtype == np.float32 and np.isfinite(Z).all()
    assert [d.attribute for d in deb.directions_] == ["sex", "device"]
    Zt, yt, st = deb.transform_train(ph.images, ph.y, sensitive_features=ph.sensitive)
    reps = TINY["n_augment"] + 1
    assert Zt.shape == (60 * reps, Z.shape[1]) and len(yt) == len(st) == 60 * reps
    np.testing.assert_allclose(Zt[:60], Z, atol=1e-6)
    # the augmented rows differ from the originals only inside span(directions)
    V = np.stack([d.main for d in deb.directions_]).T
    delta = Zt[60:] - Z
    coef, *_ = np.linalg.lstsq(V, delta.T, rcond=None)
    np.testing.assert_allclose(V @ coef, delta.T, atol=1e-4)
    assert np.abs(coef).max() <= deb.alpha_max + 1e-4


def test_images_are_resized_channels_averaged_and_hw_accepted(tiny_fitted, phantoms16) -> None:
    big = np.repeat(np.repeat(phantoms16.images, 2, axis=2), 2, axis=3)  # 32 px copy
    rgb = np.repeat(phantoms16.images, 3, axis=1)
    Z = tiny_fitted.transform(phantoms16.images)
    assert tiny_fitted.transform(big).shape == Z.shape
    np.testing.assert_allclose(tiny_fitted.transform(rgb), Z, atol=1e-5)
    np.testing.assert_allclose(tiny_fitted.transform(phantoms16.images[:, 0]), Z, atol=1e-6)


def test_image_fit_is_deterministic_and_pickles(phantoms16, tiny_fitted) -> None:
    again = AlphaShiftDebiaser(**TINY).fit(phantoms16.images, phantoms16.y,
                                           sensitive_features=phantoms16.sensitive)
    np.testing.assert_allclose(again.transform(phantoms16.images),
                               tiny_fitted.transform(phantoms16.images), rtol=1e-4, atol=1e-5)
    twin = pickle.loads(pickle.dumps(tiny_fitted))
    np.testing.assert_allclose(twin.transform(phantoms16.images),
                               tiny_fitted.transform(phantoms16.images), atol=1e-6)


def test_report_sections_checkpoint_and_figures_in_a_run_folder(tmp_path: Path, phantoms16) -> None:
    from fairaudit_alphashift.model import ShuffleVAE
    from PIL import Image

    from fairaudit.training import load_checkpoint

    context = RunContext(device="cpu", work_dir=tmp_path, progress=False)
    deb = AlphaShiftDebiaser(**TINY).bind(context)
    deb.fit(phantoms16.images, phantoms16.y, sensitive_features=phantoms16.sensitive)
    sections = deb.report_blocks()
    grids = [s for s in sections if s["kind"] == "image_grid"]
    tables = [s for s in sections if s["kind"] == "table"]
    assert {s["title"] for s in grids} >= {"alpha sweep along 'sex'", "alpha sweep along 'device'",
                                           "alphashift learned attention map"}
    for s in grids:
        assert s["image"].startswith("figures/") and s["caption"]
        if s["title"].startswith("alpha sweep"):  # says what the images can and cannot show
            assert "the images show only what the decoder renders" in s["caption"]
            assert "% of the move along the direction" in s["caption"]
        with Image.open(tmp_path / s["image"]) as im:
            assert im.format == "PNG" and im.size[0] > 100
    recon = next(t for t in tables if "reconstruction" in t["title"])
    values = dict(recon["rows"])
    assert 0.0 < float(values["held-out SSIM (mean)"]) <= 1.0
    assert float(values["held-out MSE (mean)"]) >= 0.0
    import json

    json.dumps(sections)  # result.json-serialisable
    # safetensors checkpoint reloads into an identical network
    assert deb.checkpoint_ is not None and deb.checkpoint_.endswith(".safetensors")
    vae = ShuffleVAE(16, TINY["latent_dim"], TINY["width"], depth=1.0)
    vae.load_state_dict(load_checkpoint(deb.checkpoint_))
    import torch

    vae.eval()
    with torch.no_grad():
        mu = vae.encode(torch.as_tensor(phantoms16.images))[0].numpy()
    np.testing.assert_allclose(mu, deb.transform(phantoms16.images), atol=1e-5)


def test_sections_without_run_folder_are_tables_only(tiny_fitted) -> None:
    sections = tiny_fitted.report_blocks()
    assert sections and all(s["kind"] in ("table", "curve") for s in sections)
    curve = next(s for s in sections if s["kind"] == "curve")
    n_epochs = tiny_fitted.train_report_.epochs
    assert len(curve["x"]) == n_epochs == len(curve["series"]["training loss"])


def test_attention_map_is_one_minus_w(tiny_fitted) -> None:
    att = tiny_fitted.attention_map()
    w = tiny_fitted.vae_module().weight_map().detach().numpy()[0, 0]
    np.testing.assert_allclose(att, 1.0 - w, atol=1e-6)
    assert att.shape == (16, 16) and np.all(np.abs(att) < 1.0)


# ---------------------------------------------------------------- errors
def test_errors_name_the_problem(tiny_fitted, phantoms16) -> None:
    ph = phantoms16
    with pytest.raises(NotFittedError):
        AlphaShiftDebiaser(**TINY).transform(ph.images)
    with pytest.raises(DataError, match="view"):
        AlphaShiftDebiaser(**{**TINY, "bias_attributes": ["view"]}).fit(
            ph.images, ph.y, sensitive_features=ph.sensitive)
    with pytest.raises(DataError, match="length"):
        AlphaShiftDebiaser(**TINY).fit(ph.images, ph.y[:-1], sensitive_features=ph.sensitive)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        AlphaShiftDebiaser(**TINY).fit(ph.images * 255, ph.y, sensitive_features=ph.sensitive)
    with pytest.raises(DataError, match="no direction"):
        tiny_fitted.alpha_sweep(ph.images[:2], "age")
    with pytest.raises(DataError, match="fitted on images"):
        tiny_fitted.transform(np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match="direction"):
        AlphaShiftDebiaser(**{**TINY, "direction": "sideways"}).fit(
            ph.images, ph.y, sensitive_features=ph.sensitive)


# ---------------------------------------------------------------- embeddings path
def _embeddings(n: int, seed: int, shortcut: bool) -> tuple[np.ndarray, np.ndarray, pd.DataFrame,
                                                             np.ndarray]:
    """Disease in dims 0-3 (noisy), a view marker in dim 4 tied to disease in group F,
    nuisance elsewhere.  Returns X, y, sensitive and the counterfactual X (view flipped)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    sex = rng.integers(0, 2, n)
    view = rng.integers(0, 2, n)
    if shortcut:
        view = np.where(sex == 1, y, view)
    X = rng.normal(0, 1, (n, 16)).astype(np.float32)
    X[:, :4] += 0.6 * y[:, None]
    X[:, 4] += 3.0 * view
    X[:, 5] += 1.5 * view  # the marker spreads over two dims
    cf = X.copy()
    cf[:, 4] += 3.0 * (1 - 2 * view)
    cf[:, 5] += 1.5 * (1 - 2 * view)
    sens = pd.DataFrame({"sex": np.where(sex == 1, "F", "M"),
                         "view": np.where(view == 1, "AP", "PA")})
    return X, y, sens, cf


def test_embeddings_skip_the_autoencoder_and_mitigation_works() -> None:
    from sklearn.linear_model import LogisticRegression

    X, y, sens, _ = _embeddings(2000, 0, shortcut=True)
    Xt, yt, _, cf = _embeddings(2000, 1, shortcut=False)
    deb = AlphaShiftDebiaser(bias_attributes=["view"], n_augment=4, alpha_max=2.0)
    deb.fit(X, y, sensitive_features=sens)
    assert deb.vae_ is None and deb.input_kind_ == "features"
    np.testing.assert_array_equal(deb.transform(Xt), Xt)
    d = deb.direction_for("view", "PA")
    assert np.argmax(np.abs(d)) == 4 and abs(d[0]) < 0.3  # conditional estimate: no disease part
    base = LogisticRegression(max_iter=2000).fit(deb.transform(X), y)
    Xa, ya, _ = deb.transform_train(X, y, sensitive_features=sens)
    mit = LogisticRegression(max_iter=2000).fit(Xa, ya)
    rb = reliance(base.predict_proba(Xt)[:, 1], base.predict_proba(cf)[:, 1])
    rm = reliance(mit.predict_proba(Xt)[:, 1], mit.predict_proba(cf)[:, 1])
    ab, am = auc(yt, base.predict_proba(Xt)[:, 1]), auc(yt, mit.predict_proba(Xt)[:, 1])
    print(f"\nembeddings: reliance {rb['mean_abs_change']:.3f} -> {rm['mean_abs_change']:.3f}, "
          f"AUC(shortcut-free) {ab:.3f} -> {am:.3f}")
    assert rb["mean_abs_change"] > 0.1
    assert rm["mean_abs_change"] < 0.3 * rb["mean_abs_change"]
    assert am >= ab - 0.02
    with pytest.raises(DataError, match="features"):
        deb.alpha_sweep(X[:2], "view")
