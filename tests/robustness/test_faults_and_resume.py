"""Faults during an audit: SIGKILL mid-training then --resume, diverging loss, corrupted
checkpoint, missing CUDA, stale temp files, umask, and a 2-process (gloo) audit."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fairaudit.cli.app import app
from fairaudit.errors import ExitCode
from fairaudit.results import AuditResult

HERE = Path(__file__).parent
PLUGINS = "local_plugins.py"  # copied beside each spec (conftest.py)
runner = CliRunner()

BASE = textwrap.dedent(f"""\
    name: faults
    seed: 5
    dataset:
      name: synthetic_embeddings
      params: {{n_samples: 800, dim: 32, seed: 5}}
    attributes: [sex]
    model: {{name: mlp, params: {{hidden_dims: [16], max_epochs: 6}}}}
    metrics: [group_metrics]
    statistics: {{n_boot: 100, n_permutations: 100, min_group_size: 10}}
    report: {{formats: [html]}}
    plugins: ["{PLUGINS}"]
    """)


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def write_spec(tmp_path: Path, extra: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(BASE + textwrap.dedent(extra))
    return path


def run_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*/*") if p.is_dir())


def load_result(run_dir: Path) -> AuditResult:
    return AuditResult.model_validate_json((run_dir / "result.json").read_text())


def close(a: object, b: object, path: str = "") -> list[str]:
    """Paths where two JSON values differ (numbers within 1e-6); timings are ignored."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a if k != "timings" for d in close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in close(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        return [] if math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (a != a and b != b) else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def fairaudit_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "fairaudit", *args]


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_gives_the_uninterrupted_result(tmp_path):
    marker = tmp_path / "fit-started"
    spec = write_spec(tmp_path, f"""\
        debiasers:
          - {{name: slow_projection, params: {{marker: "{marker}"}}}}
        """)
    env = {**os.environ, "FAIRAUDIT_NO_PROGRESS": "1"}
    done = subprocess.run(fairaudit_cmd("run", str(spec), "-o", str(tmp_path / "straight"), "-q"),
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    straight = json.loads((run_dirs(tmp_path / "straight")[0] / "result.json").read_text())
    marker.unlink()

    proc = subprocess.Popen(fairaudit_cmd("run", str(spec), "-o", str(tmp_path / "killed"), "-q"),
                            env={**env, "SLOW_FIT": "120"}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the debiaser never started"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    [run_dir] = run_dirs(tmp_path / "killed")
    assert not (run_dir / "result.json").exists()
    assert (run_dir / "spec.yaml").read_text() == spec.read_text()
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"
    kept = json.loads(next((run_dir / "arms").glob("00_*.json")).read_text())
    assert kept["arms"][0]["name"] == "baseline" and kept["fingerprint"]["data_hash"]
    (run_dir / ".result.json.abc123.tmp").write_text("{half a fi")  # what a kill mid-write leaves

    resumed = subprocess.run(fairaudit_cmd("run", "--resume", str(run_dir)), env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "already done" in resumed.stderr
    assert not list(run_dir.rglob(".*.tmp"))
    after = json.loads((run_dir / "result.json").read_text())
    assert [a["name"] for a in after["arms"]] == ["baseline", "slow_projection"]
    assert all(a["status"] == "ok" for a in after["arms"])
    for key in ("arms", "verdicts"):
        assert close(straight[key], after[key], key) == []
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "finished"
    assert "resuming audit" in (run_dir / "log.txt").read_text()


def test_diverging_loss_and_corrupted_checkpoint_fail_their_arms_only(tmp_path):
    bad = tmp_path / "projection.safetensors"
    bad.write_bytes(b"\x00\x01 this is not a safetensors file")
    spec = write_spec(tmp_path, f"""\
        debiasers:
          - diverging
          - {{name: from_checkpoint, params: {{checkpoint: "{bad}"}}}}
          - {{name: from_checkpoint, label: missing_checkpoint, params: {{checkpoint: "{tmp_path / 'nope'}"}}}}
          - slow_projection
        """)
    result = cli("run", str(spec), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == ExitCode.INCOMPLETE, result.output  # failed arms: the gate cannot judge
    res = load_result(run_dirs(tmp_path / "out")[0])
    arms = {a.name: a for a in res.arms}
    assert arms["diverging"].status == "failed"
    assert "TrainingError" in arms["diverging"].error and "diverged" in arms["diverging"].error
    assert "corrupted or not a safetensors file" in arms["from_checkpoint"].error
    assert str(bad) in arms["from_checkpoint"].error
    assert "checkpoint not found" in arms["missing_checkpoint"].error
    assert arms["slow_projection"].status == "ok" and arms["baseline"].status == "ok"
    assert any(m.metric == "roc_auc" for m in arms["slow_projection"].metrics)


def test_cuda_requested_but_absent_warns_or_fails_as_the_spec_says(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = write_spec(tmp_path, "device: cuda\n")
    result = cli("run", str(spec), "-o", str(tmp_path / "warn"), "-q")
    assert result.exit_code == 0, result.output
    res = load_result(run_dirs(tmp_path / "warn")[0])
    assert res.settings.device == "cpu"
    assert any("CUDA is not available" in w for w in res.warnings)

    spec = write_spec(tmp_path, "device: cuda\non_missing_cuda: fail\n", name="strict.yaml")
    result = runner.invoke(app, ["run", str(spec), "-o", str(tmp_path / "fail")])
    assert result.exit_code == ExitCode.USAGE_ERROR, result.output
    [failed_dir] = run_dirs(tmp_path / "fail")
    assert not (failed_dir / "result.json").exists()
    manifest = json.loads((failed_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "CUDA is not available" in manifest["error"]
    assert "CUDA is not available" in result.output
    assert "Traceback" not in result.output


def test_run_folder_follows_the_umask(tmp_path):
    spec = write_spec(tmp_path, "")
    old = os.umask(0o077)
    try:
        assert cli("run", str(spec), "-o", str(tmp_path / "out"), "-q").exit_code == 0
    finally:
        os.umask(old)
    run_dir = run_dirs(tmp_path / "out")[0]
    for path in [run_dir, *run_dir.rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, path


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a POSIX system")
def test_two_process_gloo_audit_matches_the_single_process_one(tmp_path):
    """torchrun --nproc_per_node 2: DDP trains the MLP on two shards; one run folder is
    written (by rank 0) and its scores match a single-process run within tolerance."""
    spec = write_spec(tmp_path, "")
    env = {**os.environ, "FAIRAUDIT_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    single = subprocess.run(fairaudit_cmd("run", str(spec), "-o", str(tmp_path / "one"), "-q"),
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
              str(29500 + os.getpid() % 1000), "-m", "fairaudit", "run", str(spec), "-o", str(tmp_path / "two"), "-q"]
    double = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)
    assert double.returncode == 0, double.stderr[-3000:]
    [two_dir] = run_dirs(tmp_path / "two")
    two, one = load_result(two_dir), load_result(run_dirs(tmp_path / "one")[0])
    assert two.provenance.world_size == 2 and one.provenance.world_size == 1

    def auc(res: AuditResult) -> float:
        return next(m.value for m in res.arms[0].metrics if m.metric == "roc_auc" and m.attribute == "sex")

    assert abs(auc(two) - auc(one)) < 0.03
    assert np.isfinite(auc(two))
