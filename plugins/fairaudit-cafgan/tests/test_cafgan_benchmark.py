"""The CAF-GAN benchmark (``benchmarks/bench_cafgan.py``): its recorded results hold the design
the issue asks for and the summary the README quotes (recomputed from the raw records), and
the ``--quick`` mode runs end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from cafgan_phantoms import synthetic_cxr_available

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "benchmarks" / "bench_cafgan.py"
RESULTS = ROOT / "benchmarks" / "results" / "bench_cafgan.json"
PREREGISTERED = "lambda_fair=1.0 as_data vs plain as_data"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cafgan_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recorded() -> dict:
    if not RESULTS.is_file():
        pytest.skip(f"{RESULTS} not in this checkout")
    return json.loads(RESULTS.read_text())


def test_recorded_run_is_the_factorial_design(recorded):
    cfg = recorded["config"]
    assert len(cfg["gan_seeds"]) >= 3 and len(cfg["ds_seeds"]) >= 3
    assert cfg["lambdas"] == [0.0, 0.1, 0.3, 1.0] and cfg["samplings"] == ["as_data", "balanced"]
    cells = {(g["gan_seed"], g["lambda_fair"], d["sampling"], d["ds_seed"])
             for g in recorded["gans"] for d in g["downstream"]}
    assert len(cells) == len(cfg["gan_seeds"]) * len(cfg["lambdas"]) * len(cfg["samplings"]) * len(cfg["ds_seeds"])


def test_recorded_summary_is_recomputed_from_the_raw_records(recorded):
    assert _bench().summarise(recorded) == recorded["summary"]


def test_recorded_preregistered_criterion_failed(recorded):
    """The README reports the pre-registered criterion (lambda_fair 1 vs plain WGAN-GP, as_data:
    lower EOD at 0.5, AUC within 0.03, on the mean over paired seeds) as failed: a rerun that
    passes must update the README."""
    assert recorded["summary"]["criteria"][PREREGISTERED]["holds_on_mean"] is False


def test_independent_judges_are_competent_on_real_images(recorded):
    """The judges' ceiling on real held-out test images: plausible lungs, label and group
    recoverable, real-vs-real two-sample AUC near 0.5."""
    real = recorded["judges"]["real_test"]
    assert recorded["judges"]["segmenter_dice"] > 0.9
    assert real["implausible_rate"] < 0.05
    assert real["reader_label_auc"] > 0.95 and real["reader_group_auc"] > 0.95
    assert abs(real["c2st_auc"] - 0.5) < 0.1


@pytest.mark.slow
@pytest.mark.skipif(not synthetic_cxr_available(), reason="synthetic_cxr not available")
def test_quick_benchmark_runs_and_records_every_cell(tmp_path, torch_single_thread, capsys):
    out = tmp_path / "quick.json"
    assert _bench().main(["--quick", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert "Pre-registered criterion" in capsys.readouterr().out
    cfg = record["config"]
    rows = [d for g in record["gans"] for d in g["downstream"]]
    assert len(rows) == len(cfg["gan_seeds"]) * len(cfg["lambdas"]) * len(cfg["samplings"]) * len(cfg["ds_seeds"])
    for row in rows:
        assert 0.0 <= row["threshold"] <= 1.0
        assert 0.0 <= row["eod_fixed"] <= 1.0 and 0.0 <= row["eod_calibrated"] <= 1.0
        assert set(row["auc_by_group"]) == {"F", "M"}
    assert PREREGISTERED in record["summary"]["criteria"]
