"""Helpers for tests that run whole audits: the CLI in-process, run folders and their results.

>>> from fairaudit.testing.runs import cli, load_result, only_run_dir
>>> outcome = cli("run", spec, "-o", tmp_path / "out", "-q")
>>> assert outcome.exit_code == 0, outcome.output
>>> result = load_result(only_run_dir(tmp_path / "out"))

A run folder is ``<output>/<spec name>/<timestamp>/`` and holds ``result.json`` (DESIGN's layout).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typer.testing import Result

    from fairaudit.results import AuditResult

__all__ = ["cli", "load_result", "only_run_dir", "run_dirs"]


def cli(*args: str | os.PathLike[str], catch_exceptions: bool = False) -> Result:
    """Run ``fairaudit ARGS...`` in this process (typer's ``CliRunner``); ``exit_code`` and ``output``
    tell what happened. An unexpected Python exception propagates unless ``catch_exceptions``."""
    from typer.testing import CliRunner

    from fairaudit.cli.app import app

    return CliRunner().invoke(app, [os.fspath(a) for a in args], catch_exceptions=catch_exceptions)


def run_dirs(output: str | os.PathLike[str]) -> list[Path]:
    """The run folders under an ``--output`` folder, sorted by spec name then start time."""
    return sorted(p for p in Path(output).glob("*/*") if p.is_dir())


def only_run_dir(output: str | os.PathLike[str]) -> Path:
    """The single run folder under ``output`` (an ``AssertionError`` lists them when not one)."""
    dirs = run_dirs(output)
    assert len(dirs) == 1, f"expected one run folder under {output}, found {[str(d) for d in dirs]}"
    return dirs[0]


def load_result(run_dir: str | os.PathLike[str]) -> AuditResult:
    """The validated :class:`~fairaudit.results.AuditResult` of a run folder's ``result.json``."""
    from fairaudit.results import AuditResult

    return AuditResult.model_validate_json((Path(run_dir) / "result.json").read_text(encoding="utf-8"))
