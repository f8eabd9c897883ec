"""The testing kit's fixtures and run helpers (fairaudit.testing) behave as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairaudit.testing.runs import cli, load_result, only_run_dir, run_dirs


def test_run_dirs_are_spec_then_timestamp_folders(tmp_path: Path) -> None:
    for rel in ("b/2024-01-02T00-00-00", "a/2024-01-03T00-00-00", "a/2024-01-01T00-00-00"):
        (tmp_path / rel).mkdir(parents=True)
    (tmp_path / "a" / "stray.txt").write_text("not a run folder")
    assert [p.relative_to(tmp_path).as_posix() for p in run_dirs(tmp_path)] == [
        "a/2024-01-01T00-00-00", "a/2024-01-03T00-00-00", "b/2024-01-02T00-00-00"]
    with pytest.raises(AssertionError, match="expected one run folder"):
        only_run_dir(tmp_path)
    assert run_dirs(tmp_path / "missing") == []


def test_load_result_reads_a_demo_run_folder(tmp_path: Path) -> None:
    from fairaudit.testing.report_fixtures import demo_result

    result = demo_result(tmp_path)
    (tmp_path / "result.json").write_text(result.model_dump_json(), encoding="utf-8")
    again = load_result(tmp_path)
    assert again == result and {a.status for a in again.arms} == {"ok", "failed"}


def test_cli_runs_in_process_and_keeps_exit_codes(tmp_path: Path) -> None:
    ok = cli("validate", Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml")
    assert ok.exit_code == 0 and "ok" in ok.output
    missing = cli("validate", tmp_path / "nope.yaml")
    assert missing.exit_code == 4, missing.output
