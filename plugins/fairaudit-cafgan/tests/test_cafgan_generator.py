"""The ``cafgan`` generator plugin: registration, contract, errors, checkpoints, report."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from cafgan_phantoms import phantom_cxr, synthetic_cxr_available
from fairaudit_cafgan import CAFGAN

from fairaudit.base import RunContext
from fairaudit.errors import CheckpointError, DataError

TINY = CAFGAN.get_test_params()[0]


@pytest.fixture(scope="module")
def fitted(tiny_cxr, torch_single_thread, tmp_path_factory):
    work = tmp_path_factory.mktemp("run")
    model = CAFGAN(**TINY).bind(RunContext(work_dir=work, progress=False))
    return model.fit(tiny_cxr), work


def test_registered_through_the_entry_point():
    from fairaudit.plugins import load_plugins

    plugins = load_plugins()
    assert plugins.generators.get("cafgan") is CAFGAN
    assert plugins.generators.source("cafgan").distribution == "fairaudit-cafgan"
    assert not [f for f in plugins.failures if "cafgan" in f.name]


def test_registration_does_not_import_torch():
    code = (
        "import sys; import fairaudit_cafgan.plugin, fairaudit_cafgan; "
        "from fairaudit.plugins import load_plugins; load_plugins(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_parameters_validate_from_the_signature():
    import pydantic

    from fairaudit.params import validate_params

    got = validate_params(CAFGAN, {"image_size": 128, "betas": [0.0, 0.99], "lambda_fair": "0.2"})
    assert got == {"image_size": 128, "betas": (0.0, 0.99), "lambda_fair": 0.2}
    for bad in ({"image_size": 100}, {"lamda_fair": 1.0}, {"n_critic": "many"}):
        with pytest.raises(pydantic.ValidationError):
            validate_params(CAFGAN, bad)


@pytest.mark.skipif(not synthetic_cxr_available(), reason="synthetic_cxr not available yet")
def test_conformance_kit():
    from fairaudit.testing import check_generator

    check_generator(CAFGAN)


def test_fit_generate_contract(fitted, tiny_cxr):
    model, _ = fitted
    sf = pd.DataFrame({"sex": ["F", "M", "M", "F", "F"]})
    y = np.array([1, 0, 1, 0, 1])
    images = model.generate(y, sf)
    assert images.shape == (5, 1, 32, 32) and images.dtype == np.float32
    assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(images, model.generate(y, sf))  # deterministic
    assert model.groups_ == ["F", "M"]
    assert all(k.endswith("_") for k in ("generator_", "critic_", "classifier_", "segmenter_"))
    assert len(model.history_) >= 1 and model.history_[-1]["generator_steps"] == TINY["n_steps"]


def test_generate_rejects_unknown_groups_labels_and_lengths(fitted):
    model, _ = fitted
    with pytest.raises(DataError, match="not seen in training"):
        model.generate(np.array([1]), pd.DataFrame({"sex": ["X"]}))
    with pytest.raises(DataError, match="0/1"):
        model.generate(np.array([2]), pd.DataFrame({"sex": ["F"]}))
    with pytest.raises(DataError, match="labels but"):
        model.generate(np.array([1, 0]), pd.DataFrame({"sex": ["F"]}))
    with pytest.raises(DataError, match="'sex'"):
        model.generate(np.array([1]), pd.DataFrame({"age_group": ["<50"]}))


def test_generate_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CAFGAN(**TINY).generate(np.array([1]), pd.DataFrame({"sex": ["F"]}))


def test_missing_masks_is_a_clear_data_error(tiny_cxr):
    from dataclasses import replace

    no_masks = replace(tiny_cxr, masks=None)
    with pytest.raises(DataError, match=r"no lung masks .*segmenter_checkpoint"):
        CAFGAN(**TINY).fit(no_masks)
    with pytest.raises(DataError, match="group_attribute 'race'"):
        CAFGAN(**{**TINY, "group_attribute": "race"}).fit(tiny_cxr)


def test_invalid_parameters_are_named(tiny_cxr):
    with pytest.raises(ValueError, match="image_size must be one of"):
        CAFGAN(**{**TINY, "image_size": 48}).fit(tiny_cxr)
    with pytest.raises(ValueError, match="n_critic must be >= 1"):
        CAFGAN(**{**TINY, "n_critic": 0}).fit(tiny_cxr)


def test_checkpoints_and_segmenter_reuse(fitted, tiny_cxr, torch_single_thread):
    from dataclasses import replace

    from fairaudit.training import load_checkpoint

    model, work = fitted
    files = sorted(p.name for p in (work / "checkpoints").glob("*.safetensors"))
    parts = {name.rsplit("_", 1)[1].split(".")[0] for name in files}
    assert parts == {"generator", "critic", "classifier", "segmenter"}
    gen_file = next((work / "checkpoints").glob("*_generator.safetensors"))
    state = load_checkpoint(gen_file)
    for key, value in model.generator_.state_dict().items():
        np.testing.assert_array_equal(state[key].numpy(), value.numpy())
    # a dataset without masks can use the saved lung U-Net
    seg_file = next((work / "checkpoints").glob("*_segmenter.safetensors"))
    reused = CAFGAN(**{**TINY, "segmenter_checkpoint": str(seg_file)}).fit(replace(tiny_cxr, masks=None))
    for (k, a), b in zip(model.segmenter_.state_dict().items(), reused.segmenter_.state_dict().values(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    with pytest.raises(CheckpointError, match="not a CAF-GAN lung U-Net"):
        CAFGAN(**{**TINY, "segmenter_checkpoint": str(gen_file)}).fit(tiny_cxr)


def test_other_image_sizes_are_resized_to_the_working_size(torch_single_thread):
    data = phantom_cxr(n=48, size=64, seed=2)
    model = CAFGAN(**TINY).fit(data)
    out = model.generate(data.y[:3], data.sensitive.iloc[:3])
    assert out.shape == (3, 1, 64, 64)


def test_report_sections(fitted):
    import json

    model, work = fitted
    sections = model.report_blocks()
    json.dumps(sections)  # JSON-serialisable
    kinds = [s["kind"] for s in sections]
    assert kinds[:3] == ["image_grid", "curve", "table"]
    grid = sections[0]
    assert (work / grid["path"]).is_file() and grid["path"].startswith("figures/")
    assert grid["row_labels"] == ["F y=0", "F y=1", "M y=0", "M y=1"]
    curve = sections[1]
    assert len(curve["x"]) == len(model.history_)
    assert {"critic loss", "Wasserstein estimate"} <= set(curve["series"])
    assert any("fairness" in k for k in curve["series"]) and any("clinical" in k for k in curve["series"])
    table = sections[2]
    assert [r[0] for r in table["rows"]] == [
        "real, reference masks",
        "real, segmenter",
        "generated, segmenter",
    ]
    assert table["rows"][0][2] == 0.0  # real masks are plausible by construction
    # outside a run folder the grid is inlined
    inline = CAFGAN(**TINY)
    inline.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    assert inline.report_blocks()[0]["data_uri"].startswith("data:image/png;base64,")


def test_two_arms_do_not_overwrite_each_others_files():
    a = CAFGAN(**TINY, lambda_fair=0.0, lambda_clinic=0.0)
    b = CAFGAN(**TINY)
    assert a._tag() != b._tag()


def test_compare_arms_pairs_each_arm_with_the_reference(fitted, tiny_cxr, torch_single_thread):
    """``paired_reference``: every other arm gets its change from the reference with a paired
    interval; an arm trained exactly like the reference changes nothing."""
    from fairaudit_cafgan.evaluation import compare_arms

    from fairaudit.builtin.models.cnn import SmallCNN

    model, _ = fitted
    test = phantom_cxr(n=160, size=32, seed=7)

    def factory():
        return SmallCNN(channels=[4], max_epochs=2, device="cpu", random_state=0)

    arms = {"real": None, "real_again": None, "cafgan": model}
    results = compare_arms(tiny_cxr, test, arms, model_factory=factory, n_boot=50, paired_reference="real")
    assert "versus" not in results["real"]
    same = results["real_again"]["versus"]
    assert same["reference"] == "real"
    assert same["roc_auc"] == {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    caf = results["cafgan"]["versus"]
    expected = results["cafgan"]["auc"]["value"] - results["real"]["auc"]["value"]
    assert caf["roc_auc"]["value"] == pytest.approx(expected, abs=1e-12)
    assert caf["roc_auc"]["ci_low"] <= caf["roc_auc"]["value"] <= caf["roc_auc"]["ci_high"]
    eod_change = results["cafgan"]["eod"]["value"] - results["real"]["eod"]["value"]
    assert caf["equal_opportunity_difference"]["value"] == pytest.approx(eod_change, abs=1e-12)
    with pytest.raises(ValueError, match="paired_reference 'plain' is not one of the arms"):
        compare_arms(tiny_cxr, test, {"real": None}, model_factory=factory, n_boot=0, paired_reference="plain")
