"""The benchmark scripts: the real-data loader (shared data) and the clean skip without it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"alphashift_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_cxr_benchmark_skips_cleanly_without_data(tmp_path: Path, capsys) -> None:
    bench = _module("real_cxr_view")
    assert bench.main(["--data", str(tmp_path)]) == 0
    assert "skipped" in capsys.readouterr().out


def test_view_auc_within_class_is_half_without_view_signal() -> None:
    bench = _module("real_cxr_view")
    rng = np.random.default_rng(0)
    y, view = rng.integers(0, 2, 4000), rng.integers(0, 2, 4000)
    assert bench.view_auc_within_class(rng.normal(size=4000) + 2 * y, view, y) == pytest.approx(
        0.5, abs=0.03)
    assert bench.view_auc_within_class(view + 0.1 * rng.normal(size=4000), view, y) > 0.95


@pytest.mark.shared_data
def test_real_cxr_pack_loads_frontal_films(covid_pack: Path) -> None:
    bench = _module("real_cxr_view")
    images, y, sensitive, patients = bench.load_pack(covid_pack.parent)
    n = len(y)
    assert images.shape == (n, 1, 256, 256) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(sensitive["view"]) == {"AP", "PA"} and set(np.unique(y)) == {0, 1}
    assert len(patients) == n and len(np.unique(patients)) < n
