"""The CI gate fails closed and a stopped run says how to go on (issue 15 items 2, 5, 8):
a threshold without a verdict exits 6, a report that cannot be rendered exits 7 with the
manifest saying so and ``result.json`` kept, SIGTERM ends a run as Ctrl-C does (exit 2,
manifest ``interrupted``, the ``--resume`` hint)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from fairaudit.atomic import WriteError
from fairaudit.errors import ExitCode
from fairaudit.testing.runs import cli, only_run_dir

PLUGINS = "local_plugins.py"  # copied beside each spec (conftest.py)

SPEC = textwrap.dedent(f"""\
    name: gate
    seed: 1
    dataset:
      name: synthetic_embeddings
      params: {{n_samples: 300, dim: 16, seed: 1}}
    attributes: [sex]
    model: logistic
    metrics: [group_metrics]
    statistics: {{n_boot: 20, n_permutations: 20, min_group_size: 5}}
    report: {{formats: [html]}}
    plugins: ["{PLUGINS}"]
    """)


def write_spec(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC + textwrap.dedent(extra))
    return path


def test_a_threshold_without_a_verdict_exits_6_even_when_quiet(tmp_path):
    """A declared metric that no arm produces (a counterfactual metric on a dataset without
    images): the gate cannot judge it. (An unknown metric, attribute or arm in a threshold is
    refused before any training: tests/bad_inputs.)"""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("metrics: [group_metrics]", "metrics: [group_metrics, counterfactual_quality]")
                    + textwrap.dedent("""\
                        thresholds:
                          roc_auc: {min: 0.5}
                          cf_identity_l1: {max: 0.5}
                        """))
    result = cli("run", str(spec), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == ExitCode.INCOMPLETE == 6, result.output
    out = " ".join(result.output.split())
    assert "cannot judge: threshold 'cf_identity_l1' on arm 'baseline': no verdict; no such metric was computed" in out
    verdicts = json.loads((only_run_dir(tmp_path / "out") / "result.json").read_text())["verdicts"]
    assert {(v["metric"], v["outcome"]) for v in verdicts} == {("roc_auc", "pass"), ("cf_identity_l1", "missing")}
    spec.write_text(spec.read_text() + "  equal_opportunity_difference: {max: 0.5, arms: [no_such_arm]}\n")
    refused = cli("run", str(spec), "-o", str(tmp_path / "out2"), "-q")
    assert refused.exit_code == ExitCode.USAGE_ERROR, refused.output
    assert "arm 'no_such_arm' is not an arm of this audit" in " ".join(refused.output.split())
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").rglob("arms/*"))


def test_a_failed_threshold_still_exits_1_when_something_is_also_unjudged(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("metrics: [group_metrics]", "metrics: [group_metrics, counterfactual_quality]")
                    + "thresholds:\n  roc_auc: {min: 0.999}\n  cf_identity_l1: {max: 1}\n")
    result = cli("run", str(spec), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == ExitCode.THRESHOLDS_FAILED, result.output
    assert "cannot judge: threshold 'cf_identity_l1'" in result.output


def test_report_that_fails_to_render_exits_7_and_keeps_result_json(tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise WriteError("could not write report.html: No space left on device")

    monkeypatch.setattr("fairaudit.report.write_reports", disk_full)
    spec = write_spec(tmp_path)
    result = cli("run", str(spec), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == ExitCode.REPORT_FAILED == 7, result.output
    run_dir = only_run_dir(tmp_path / "out")
    assert "report rendering failed: WriteError: could not write report.html: No space left on device" in \
        " ".join(result.output.split())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "report_failed" and "No space left on device" in manifest["error"]
    assert not (run_dir / "report.html").exists()
    monkeypatch.undo()
    rendered = cli("report", str(run_dir), "--format", "html")  # result.json was kept: render it later
    assert rendered.exit_code == 0, rendered.output
    assert (run_dir / "report.html").is_file()


def test_sigterm_ends_the_run_like_ctrl_c_and_prints_the_resume_hint(tmp_path):
    marker = tmp_path / "fit-started"
    spec = write_spec(tmp_path, f'debiasers:\n  - {{name: slow_projection, params: {{marker: "{marker}"}}}}\n')
    env = {**os.environ, "SLOW_FIT": "120", "FAIRAUDIT_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fairaudit", "run", str(spec), "-o", str(tmp_path / "out"), "-q"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the debiaser never started"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED == 2, stderr
    run_dir = only_run_dir(tmp_path / "out")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and "SIGTERM" in manifest["error"]
    assert f"resume with fairaudit run --resume {run_dir}" in " ".join(stderr.split())
    assert "Traceback" not in stderr

    marker.unlink()
    resumed = cli("run", "--resume", str(run_dir))  # the baseline finished before the signal: kept
    assert resumed.exit_code == 0, resumed.output
    assert "'baseline': already done" in resumed.output
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "finished"
