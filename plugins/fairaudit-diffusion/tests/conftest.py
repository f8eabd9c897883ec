"""Shared fixtures: a tiny random SD pipeline saved to a local folder, phantom chest X-rays."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from pathlib import Path

import pytest

from fairaudit.data import AuditDataset


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fairaudit_diffusion.tiny import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"), image_size=32, seed=0)


@pytest.fixture(scope="session")
def dataset() -> AuditDataset:
    """16 chest-radiograph phantoms, 32 px, with device / view extras and sex / age groups."""
    from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR

    return SyntheticCXR(n_samples=16, image_size=32, seed=0).load()


_FAST = {
    "max_steps": 30,
    "batch_size": 8,
    "num_inference_steps": 10,
    "guidance_scale": 3.0,
    "classify_trials": 2,
    "device": "cpu",
    "progress": False,
    "random_state": 0,
}


@pytest.fixture(scope="session")
def fast() -> dict:
    """Small CPU settings: 30 fine-tuning steps of batch 8, 10 DDIM steps."""
    return dict(_FAST)


@pytest.fixture(scope="session")
def fitted_lora(tiny_dir: Path, dataset: AuditDataset, fast: dict):
    from fairaudit_diffusion.generator import DiffusionCounterfactuals

    return DiffusionCounterfactuals(model_dir=str(tiny_dir), finetune="lora", lr=1e-2, **fast).fit(
        dataset
    )


@pytest.fixture(scope="session")
def fitted_unet(tiny_dir: Path, dataset: AuditDataset, fast: dict):
    from fairaudit_diffusion.generator import DiffusionCounterfactuals

    return DiffusionCounterfactuals(model_dir=str(tiny_dir), finetune="unet", lr=1e-3, **fast).fit(
        dataset
    )
