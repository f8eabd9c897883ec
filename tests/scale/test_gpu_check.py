"""benchmarks/gpu_check.py: its probes catch what they claim to, and the CPU dry run passes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def test_loss_falls_compares_the_first_and_last_quarter(gpu_check):
    assert gpu_check.loss_falls([4.0, 3.0, 2.5, 2.0, 1.0, 1.5, 0.5, 0.7]) == (3.5, 0.6, True)
    assert gpu_check.loss_falls([1.0, 1.2]) == (1.0, 1.2, False)
    assert gpu_check.loss_falls([1.0])[2] is False  # one value proves nothing


def test_probe_flags_modules_off_the_requested_device(gpu_check):
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    probe = gpu_check.Probe("cuda")  # the weights are on the CPU: a silent fallback
    with probe.watch():
        net(torch.zeros(2, 4))
        net(torch.zeros(2, 4))
    assert probe.wrong == {"Linear weights on cpu": 2, "Linear input on cpu": 2, "ReLU input on cpu": 1,
                           "Sequential input on cpu": 1}
    assert probe.modules_checked == 4 and probe.dtypes == {"float32": 4}
    fine = gpu_check.Probe("cpu")
    with fine.watch():
        net(torch.zeros(2, 4))
    assert not fine.wrong and fine.modules_checked == 4


def test_probe_sees_autocast_dtypes_and_times_the_data(gpu_check):
    import torch

    from fairaudit.training import make_loader

    layer = torch.nn.Linear(4, 2)
    loader = make_loader(np.zeros((10, 4), np.float32), batch_size=4, shuffle=False)
    probe = gpu_check.Probe("cpu")
    with probe.watch():
        for (xb,) in loader:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                layer(xb)
    assert probe.dtypes == {"bfloat16": 3}
    assert (probe.batches, probe.samples) == (3, 10)
    assert 0 < probe.data_seconds <= probe.seconds
    assert probe.peak_bytes > 0


def test_probe_counts_torch_checkpoint_blocks_and_restores_them(gpu_check):
    from fairaudit.builtin.models import _checkpoint_net

    original = _checkpoint_net.batches
    probe = gpu_check.Probe("cpu")
    with probe.watch():
        from fairaudit.builtin.models._checkpoint_net import batches  # as torch_checkpoint imports it

        blocks = [(pos.tolist(), xb.shape[0]) for pos, xb in batches(np.zeros((10, 1, 4, 4)), 4)]
    assert blocks == [([0, 1, 2, 3], 4), ([4, 5, 6, 7], 4), ([8, 9], 2)]
    assert (probe.batches, probe.samples) == (3, 10) and 0 < probe.data_seconds <= probe.seconds
    assert _checkpoint_net.batches is original


def test_evaluation_only_job_reports_its_own_throughput(gpu_check, tmp_path):
    """densenet121-predict: no loss to judge, samples/s of predict_proba alone, the bf16 row
    says the model has no mixed precision."""
    out = tmp_path / "check.json"
    code = gpu_check.main(["--only", "densenet121-predict", "--skip-audit", "--skip-ddp", "--json", str(out)])
    rows = {r["precision"]: r for r in json.loads(out.read_text())["rows"]}
    assert code == 0, rows
    fp32, bf16 = rows["fp32"], rows["bf16 autocast"]
    assert fp32["status"] == "ok" and fp32["on_device"] and fp32["loss_falls"] is None
    assert fp32["batches"] >= 2 and fp32["samples_per_s"] > 0 and "predict_proba" in fp32["note"]
    assert "does not support mixed precision: ran in fp32" in bf16["note"] and "bfloat16" not in bf16["compute_dtype"]


def test_table_lists_every_row_and_its_problems(gpu_check):
    ok = gpu_check.Row(job="mlp", precision="fp32", device="cpu", batches=5, seconds=1.0, samples_per_s=10.0,
                       peak_mib=100.0, peak_kind="RSS", loss_first=1.0, loss_last=0.5, loss_falls=True, on_device=True)
    bad = gpu_check.Row(job="cnn", precision="bf16 autocast", device="cuda", status="FAIL", on_device=False,
                        problems=["off device: Conv2d weights on cpu (x1)"])
    text = gpu_check.table([ok, bad])
    lines = text.splitlines()
    assert lines[0].startswith("job") and lines[2].startswith("mlp") and lines[3].startswith("cnn")
    assert "1 -> 0.5" in lines[2] and "100 RSS (+0)" in lines[2]
    assert "cnn [bf16 autocast]: off device: Conv2d weights on cpu (x1)" in text


def test_one_trainer_through_main(gpu_check, tmp_path, capsys):
    out = tmp_path / "check.json"
    code = gpu_check.main(["--only", "mlp", "--no-bf16", "--skip-audit", "--skip-ddp", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads(out.read_text())
    [row] = report["rows"]
    assert row["job"] == "mlp" and row["status"] == "ok" and row["loss_falls"] and row["on_device"]
    assert report["threads"]["threads"] >= 1 and report["threads"]["reason"]
    if not report["environment"]["cuda"]:
        assert printed.rstrip().endswith(gpu_check.NO_CUDA_LINE)


@pytest.mark.slow
def test_the_cpu_dry_run_passes_every_check(tmp_path):
    """The command CI runs: every trainer at both precisions, the audit and the 2-rank run."""
    out = tmp_path / "check.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--json", str(out)], capture_output=True, text=True,
                          env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads(out.read_text())
    rows = {(r["job"], r["precision"]): r for r in report["rows"]}
    trainers = ("mlp", "cnn", "advvae", "alphashift", "cafgan", "diffusion", "densenet121")
    jobs = (*trainers, "densenet121-predict")
    assert {(j, p) for j in jobs for p in ("fp32", "bf16 autocast")} | {("cnn-stream", "fp32")} <= set(rows)
    assert {"audit (run_audit)", "ddp (torchrun x2)"} <= {job for job, _ in rows}
    assert all(r["status"] == "ok" for r in rows.values())
    for job in trainers:
        assert rows[(job, "fp32")]["loss_falls"] and rows[(job, "fp32")]["on_device"]
    for option in ("gradient checkpointing", "EMA", "cosine LR", "checkpoints at [5, 10]",
                   "validation grid rows [0, 5, 10]", "img2img edit"):
        assert option in rows[("diffusion", "fp32")]["note"]
    assert "does not support mixed precision" in rows[("densenet121", "bf16 autocast")]["note"]
    table = proc.stdout
    for job in (*jobs, "audit (run_audit)", "ddp (torchrun x2)"):
        assert f"\n{job} " in table
    if not report["environment"]["cuda"]:
        assert report["dry_run"] and proc.stdout.rstrip().endswith("no CUDA was found: ran the CPU dry run "
                                                                    "(same code paths, tiny sizes)")
