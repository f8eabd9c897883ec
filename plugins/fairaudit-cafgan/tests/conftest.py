"""Fixtures of the CAF-GAN tests: tiny chest-radiograph datasets with lung masks."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("FAIRAUDIT_NO_PROGRESS", "1")


def _register_helper(name: str) -> None:
    """Make ``tests/<name>.py`` importable by name (pytest runs in importlib mode)."""
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_register_helper("cafgan_phantoms")


@pytest.fixture(scope="session")
def tiny_cxr():
    """96 phantoms at 32 px with masks (fast contract tests)."""
    from cafgan_phantoms import phantom_cxr

    return phantom_cxr(n=96, size=32, seed=0)


@pytest.fixture(scope="session")
def torch_single_thread():
    import torch

    torch.set_num_threads(1)
    return torch
