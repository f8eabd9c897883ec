"""Every test here gets ``tests/local_plugins.py`` copied beside its specs (``tmp_path``): a local
plugin file is loaded only from inside the spec's own folder tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

LOCAL_PLUGINS = Path(__file__).resolve().parent.parent / "local_plugins.py"


@pytest.fixture(autouse=True)
def local_plugins_beside_the_specs(tmp_path: Path) -> Path:
    return Path(shutil.copy(LOCAL_PLUGINS, tmp_path / "local_plugins.py"))
