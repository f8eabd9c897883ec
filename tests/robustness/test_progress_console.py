"""Progress and console (issue 15 item 10): an ``arm k/N`` counter, a ``(k/M)`` counter per metric
during the metrics phase, each warning printed once, and progress in a redirected log as plain
lines (no ``\\r`` redraws).  (The ``--resume RUN_DIR`` hint on interrupt and the Timings table of a
resumed run are tested in test_gate_and_signals.py and test_resume_integrity.py.)"""

from __future__ import annotations

import io
import random
import re
import textwrap
from pathlib import Path

from fairaudit.testing.runs import cli
from fairaudit.training import plain_progress, progress

SPEC = textwrap.dedent("""\
    name: console
    seed: 0
    dataset:
      name: table
      params: {path: data.csv, target: y, sensitive: [sex], features: [f0, f1]}
    attributes: [sex]
    model: logistic
    metrics: [group_metrics, {name: attribute_probe, params: {probes: [linear], cv_folds: 2, shuffled_baseline: false}}]
    statistics: {n_boot: 10, n_permutations: 10, min_group_size: 5}
    report: {formats: [html]}
    """)


def write_audit(folder: Path) -> Path:
    rng = random.Random(0)
    lines = ["f0,f1,sex,y"]
    for i in range(240):
        y = int(rng.random() < 0.4)
        sex = "" if i in (7, 50) else "FM"[i % 2]  # two blank cells: a loader warning, announced as it happens
        lines.append(f"{rng.gauss(y, 1):.3f},{rng.gauss(0, 1):.3f},{sex},{y}")
    (folder / "data.csv").write_text("\n".join(lines) + "\n")
    (folder / "spec.yaml").write_text(SPEC)
    return folder / "spec.yaml"


def test_arm_and_metric_counters_and_each_warning_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRAUDIT_NO_PROGRESS", "1")
    outcome = cli("run", write_audit(tmp_path), "-o", tmp_path / "out")
    assert outcome.exit_code == 0, outcome.output
    text = " ".join(outcome.output.split())  # rich wraps long lines
    assert "arm 1/1 'baseline': metric group_metrics (1/2)" in text
    assert "arm 1/1 'baseline': metric attribute_probe (2/2)" in text
    assert text.count("sensitive column 'sex' has 2 missing value(s)") == 1, text  # before: twice


def test_quiet_run_prints_each_warning_once_at_the_end(tmp_path):
    outcome = cli("run", write_audit(tmp_path), "-o", tmp_path / "out", "-q")
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.count("has 2 missing value(s)") == 1
    assert "arm 1/1" not in outcome.output


def test_progress_into_a_log_file_is_plain_lines(monkeypatch):
    """A redirected stderr gets at most 11 lines and never a carriage return (tqdm's redraws)."""
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    assert list(progress(range(95), desc="toy training", total=95)) == list(range(95))
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "toy training: 10/95" and lines[-2] == "toy training: 90/95"
    assert re.fullmatch(r"toy training: done, 95 in \d+\.\d s", lines[-1]) and len(lines) == 10
    log.truncate(0)
    assert list(progress(range(5), desc="off", enabled=False)) == list(range(5)) and log.getvalue() == ""


def test_plain_progress_without_a_length():
    out = io.StringIO()
    assert list(plain_progress(iter("abc"), desc="x", total=None, stream=out)) == ["a", "b", "c"]
    assert out.getvalue().startswith("x: done, 3 in ")


def test_a_long_step_says_it_is_still_running_until_it_ends():
    import threading
    import time

    from fairaudit.audit.heartbeat import heartbeat

    said: list[str] = []
    with heartbeat(said.append, "metric slow (1/1)", every=0.05):
        time.sleep(0.32)
    count = len(said)
    assert 3 <= count <= 7 and all(re.fullmatch(r"metric slow \(1/1\): still running \(\d+ s\)", s) for s in said)
    time.sleep(0.15)
    assert len(said) == count  # stopped with the step
    assert not any(t.name == "fairaudit-heartbeat" for t in threading.enumerate())
