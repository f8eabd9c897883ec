"""The registered generator: plugin loading, parameters, generate, report grid, conformance kit."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairaudit_diffusion.generator import DiffusionCounterfactuals
from fairaudit_diffusion.pipeline import ModelDirError
from sklearn.exceptions import NotFittedError

from fairaudit.base import RunContext
from fairaudit.blocks import to_block
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError
from fairaudit.params import validate_params


def test_entry_point_registers_the_generator_without_importing_diffusers() -> None:
    from fairaudit.plugins import load_plugins

    plugins = load_plugins()
    assert plugins.generators.get("sd_counterfactual") is DiffusionCounterfactuals
    assert plugins.generators.source("sd_counterfactual").distribution == "fairaudit-diffusion"
    code = (
        "import sys, fairaudit_diffusion.plugin, fairaudit_diffusion.generator; "
        "print([m for m in ('torch', 'diffusers', 'transformers', 'peft') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_parameters_validate_from_the_signature() -> None:
    params = validate_params(
        DiffusionCounterfactuals, {"model_dir": "/m", "finetune": "unet", "strength": 0.5}
    )
    assert params == {"model_dir": "/m", "finetune": "unet", "strength": 0.5}
    with pytest.raises(Exception, match="finetune"):
        validate_params(DiffusionCounterfactuals, {"finetune": "dreambooth"})
    with pytest.raises(Exception, match="extra"):
        validate_params(DiffusionCounterfactuals, {"guidance": 3})
    assert DiffusionCounterfactuals(lr=0.5).get_params()["lr"] == 0.5


def test_errors_before_and_around_fitting(
    dataset: AuditDataset, tmp_path: Path, fast: dict
) -> None:
    with pytest.raises(NotFittedError):
        DiffusionCounterfactuals().generate(np.array([1]), pd.DataFrame({"sex": ["F"]}))
    with pytest.raises(ModelDirError, match="never downloads"):
        DiffusionCounterfactuals(model_dir=str(tmp_path / "sd15"), **fast).fit(dataset)
    with pytest.raises(ModelDirError, match=r"params\.model_dir"):
        DiffusionCounterfactuals(**fast).fit(dataset)
    features = AuditDataset(
        name="emb",
        y=np.array([0, 1]),
        sensitive=pd.DataFrame({"sex": ["F", "M"]}),
        patient_ids=np.arange(2),
        X=np.zeros((2, 3)),
    )
    with pytest.raises(DataError, match="image dataset"):
        DiffusionCounterfactuals(model_dir="tiny://32", **fast).fit(features)
    with pytest.raises(ValueError, match="strength"):
        DiffusionCounterfactuals(model_dir="tiny://32", **{**fast, "strength": 2.0}).fit(dataset)
    with pytest.raises(DataError, match="caption_fields"):
        DiffusionCounterfactuals(model_dir="tiny://32", caption_fields=["race"], **fast).fit(
            dataset
        )


def test_captions_come_from_the_dataset_metadata(fitted_lora: DiffusionCounterfactuals) -> None:
    cap = fitted_lora.captioner_
    assert cap.fields == ("label", "device", "view", "sex", "age_group")
    assert cap.label_name == "disease"
    assert fitted_lora.field_values_["device"] == ["0", "1"]
    assert fitted_lora.resolution_ == 32 and fitted_lora.image_shape_ == (1, 32, 32)


def test_generate_returns_images_at_the_dataset_size(
    fitted_lora: DiffusionCounterfactuals, dataset: AuditDataset
) -> None:
    sf = dataset.sensitive.iloc[:5].reset_index(drop=True)
    out = fitted_lora.generate(np.array([0, 1, 0, 1, 1]), sf)
    assert out.shape == (5, 1, 32, 32) and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1
    assert float(np.abs(out[0] - out[1]).mean()) > 0  # different noise and captions per row
    again = fitted_lora.generate(np.array([0, 1, 0, 1, 1]), sf)
    np.testing.assert_allclose(out, again, atol=1e-6)  # seeded
    assert fitted_lora.generate(np.array([], int), sf.iloc[:0]).shape == (0, 1, 32, 32)


def test_counterfactuals_keep_input_size_and_channels(
    fitted_unet: DiffusionCounterfactuals, dataset: AuditDataset
) -> None:
    from scipy.ndimage import zoom

    big = zoom(dataset.images[:3], (1, 1, 40 / 32, 40 / 32), order=1).astype(np.float32)
    out = fitted_unet.counterfactual(big, {"factor": "device", "to": 0})
    assert out.shape == (3, 1, 40, 40) and out.min() >= 0 and out.max() <= 1
    rgb = np.repeat(dataset.images[:2], 3, axis=1)
    out = fitted_unet.counterfactual(rgb, {"factor": "view", "to": 1})
    assert out.shape == (2, 3, 32, 32)


def test_report_section_saves_the_grid(
    fitted_unet: DiffusionCounterfactuals, dataset: AuditDataset, tmp_path: Path
) -> None:
    from PIL import Image

    fitted_unet.counterfactual(dataset.images[:4], {"factor": "device", "to": 0})
    bound = fitted_unet.bind(RunContext(work_dir=tmp_path))
    try:
        blocks = bound.report_blocks()
        section = bound.report_details_
    finally:
        fitted_unet._context = None
    # every block is one the core accepts (typed keys only), else the report drops it
    assert [to_block(b).kind for b in blocks] == ["text", "image_grid", "table", "table"]
    assert blocks[0]["title"] == "Plumbing check, not a result"  # a tiny random pipeline
    assert blocks[1]["path"] == section["path"]
    assert section["kind"] == "image_grid" and section["columns"] == [
        "original",
        "counterfactual",
        "difference",
    ]
    png = tmp_path / section["path"]
    assert png.is_file() and section["path"] == "figures/sd_counterfactual_grid.png"
    width, height = Image.open(png).size
    assert width >= 3 * 96 and height >= 4 * 96  # 3 columns x 4 rows of 96 px cells plus labels
    assert len(section["row_labels"]) == len(section["prompts"]) == 4
    assert section["finetune"]["eval_loss_after"] < section["finetune"]["eval_loss_before"]
    json.dumps(section)
    unbound = fitted_unet.report_blocks()[1]
    assert unbound["data_uri"].startswith("data:image/png;base64,") and "path" not in unbound
    assert base64.b64decode(unbound["data_uri"].split(",", 1)[1]) == png.read_bytes()


def test_conformance_kit() -> None:
    pytest.importorskip(
        "fairaudit.builtin.datasets.synthetic_cxr",
        reason="the conformance kit's image data (SyntheticCXR) is not available yet",
    )
    from fairaudit.testing import check_generator

    check_generator(DiffusionCounterfactuals)


def test_report_edits_training_images_when_no_counterfactual_was_asked(
    fitted_lora: DiffusionCounterfactuals, dataset: AuditDataset
) -> None:
    import copy

    g = copy.copy(fitted_lora)
    g.__dict__.pop("examples_", None)
    rows = g.report_rows_
    assert len(rows) == 6
    devices = dataset.extras["device"][rows]
    assert sorted(devices.tolist()) == [0, 0, 0, 1, 1, 1]  # half from each value
    g.report_blocks()
    section = g.report_details_
    assert section["edit"]["factor"] == "device" and section["edit"]["source"] == "metadata"
    for prompt, row in zip(section["prompts"], rows, strict=True):
        sex = "female patient" if dataset.sensitive["sex"][row] == "F" else "male patient"
        had = dataset.extras["device"][row] == 1
        assert sex in prompt["source"] and sex in prompt["target"]
        assert ("with support devices" in prompt["source"]) == had
        assert ("without support devices" in prompt["target"]) == had
    with pytest.raises(DataError, match="report_factor"):
        g.set_params(report_factor="race")._report_factor()
