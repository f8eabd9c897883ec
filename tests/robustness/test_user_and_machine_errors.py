"""Errors of the user or of the machine, never "internal" (issue 15 items 7 and 8): a 300-character
spec name gets a bounded run-folder name and nothing is lost; a debiaser returning the wrong number
of rows fails its arm with the conformance kit's words; a full disk, a folder without permission
and a read-only file system exit 8 ("the machine refused"), not 3 or 4."""

from __future__ import annotations

import errno
import json
import textwrap
from pathlib import Path

import pytest

from fairaudit.errors import ExitCode, MachineRefused, machine_refused
from fairaudit.testing.runs import cli, only_run_dir

SPEC = textwrap.dedent("""\
    name: {name}
    seed: 1
    dataset:
      name: synthetic_embeddings
      params: {{n_samples: 240, dim: 8, seed: 1}}
    attributes: [sex]
    model: logistic
    metrics: [group_metrics]
    statistics: {{n_boot: 10, n_permutations: 10, min_group_size: 5}}
    report: {{formats: [html]}}
    """)

#: A local plugin in the spec's own folder: a debiaser that drops rows.
SHRINKING = textwrap.dedent("""\
    import numpy as np

    from fairaudit import BaseDebiaser, hookimpl


    class Shrinking(BaseDebiaser):
        name = "shrinking"

        def fit(self, X, y, *, sensitive_features):
            return self

        def transform(self, X):
            X = np.asarray(X, dtype=np.float32)
            return X[: len(X) // 10]


    @hookimpl
    def fairaudit_register_debiasers(registry):
        registry.add(Shrinking)
    """)


def write_spec(tmp_path: Path, name: str = "errors", extra: str = "") -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(name=name) + extra)
    return spec


def test_a_300_character_spec_name_gets_a_bounded_folder_and_keeps_its_name(tmp_path):
    """Before: ``OSError: [Errno 36] File name too long`` (exit 3)."""
    name = "a" * 150 + "." + "b" * 149
    outcome = cli("run", write_spec(tmp_path, name), "-o", tmp_path / "out", "-q")
    assert outcome.exit_code == 0, outcome.output
    run_dir = only_run_dir(tmp_path / "out")
    folder = run_dir.parent.name
    assert len(folder) <= 60 and folder.startswith("a" * 40) and folder != name
    assert json.loads((run_dir / "result.json").read_text())["name"] == name  # nothing lost
    assert json.loads((run_dir / "manifest.json").read_text())["spec_name"] == name
    again = cli("run", write_spec(tmp_path, name), "-o", tmp_path / "out", "-q")
    assert again.exit_code == 0 and {p.parent.name for p in (tmp_path / "out").glob("*/*")} == {folder}


def test_a_debiaser_returning_too_few_rows_fails_its_arm_with_the_kits_message(tmp_path):
    """Before: a numpy broadcasting error deep in the model fit, or a silent misalignment."""
    (tmp_path / "shrinking.py").write_text(SHRINKING)
    spec = write_spec(tmp_path, extra="debiasers: [shrinking]\nplugins: [shrinking.py]\n")
    outcome = cli("run", spec, "-o", tmp_path / "out", "-q")
    assert outcome.exit_code == ExitCode.INCOMPLETE, outcome.output
    arms = json.loads((only_run_dir(tmp_path / "out") / "result.json").read_text())["arms"]
    failed = next(a for a in arms if a["name"] == "shrinking")
    assert failed["status"] == "failed"
    n_train = 240 - 72 - 36  # test 30%, validation 15% of 240 rows
    assert failed["error"] == (f"PluginError: debiaser 'shrinking': transform_train returned {n_train // 10} rows "
                               f"for {n_train} labels; a debiaser maps each row to one row (a bug in the plugin)")
    assert "cannot judge: arm 'shrinking' failed: PluginError: debiaser 'shrinking'" in " ".join(outcome.output.split())


def _fail_fsync(code: int):
    def fsync(fd: int) -> None:
        raise OSError(code, {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system"}[code])
    return fsync


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["disk-full", "read-only"])
def test_a_full_or_read_only_disk_exits_8_without_a_traceback(tmp_path, monkeypatch, code):
    """Before: exit 4, "usage error"."""
    import fairaudit.atomic

    monkeypatch.setattr(fairaudit.atomic.os, "fsync", _fail_fsync(code))
    outcome = cli("run", write_spec(tmp_path), "-o", tmp_path / "out", "-q", catch_exceptions=True)
    assert outcome.exit_code == ExitCode.MACHINE_REFUSED == 8, outcome.output
    text = " ".join(outcome.output.split())
    assert "Traceback" not in text
    assert "error: WriteError: could not write" in text and "(the machine refused: free disk space" in text
    assert not list((tmp_path / "out").rglob("*.tmp"))  # nothing half-written left behind


def test_no_permission_on_the_output_folder_exits_8(tmp_path, monkeypatch):
    import os

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == tmp_path else real(p, mode, **kw))
    outcome = cli("run", write_spec(tmp_path), "-o", tmp_path / "out", "-q")
    assert outcome.exit_code == 8, outcome.output
    assert f"error: MachineRefused: --output {tmp_path / 'out'}: no permission to write in {tmp_path}" in outcome.output


def test_machine_refused_follows_the_cause_chain():
    try:
        try:
            raise PermissionError(errno.EACCES, "Permission denied")
        except OSError as exc:
            raise MachineRefused("could not write x") from exc
    except MachineRefused as outer:
        assert machine_refused(outer)
    assert not machine_refused(ValueError("no"))
    assert not machine_refused(OSError(errno.ENOENT, "missing"))
