"""Test settings of fairaudit-alphashift: quiet bars, one torch thread, shared-data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("FAIRAUDIT_NO_PROGRESS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = Path(os.environ.get("FAIRAUDIT_SHARED_DATA", REPO.parent / "shared" / "data"))
COVID_PACK = SHARED_DATA / "covid-chestxray-dataset"


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("FAIRAUDIT_TEST_THREADS", "1"))))


@pytest.fixture
def covid_pack() -> Path:
    if not (COVID_PACK / "covid_cxr_256.npz").is_file():
        pytest.skip(f"real chest X-ray pack not found under {COVID_PACK}")
    return COVID_PACK
