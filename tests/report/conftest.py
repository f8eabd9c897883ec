"""Fixtures of the report tests: the demo result (written once per session) and its HTML."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairaudit.results import AuditResult
from fairaudit.testing.report_fixtures import demo_result


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo_run")


@pytest.fixture(scope="session")
def demo(demo_dir: Path) -> AuditResult:
    return demo_result(demo_dir)


@pytest.fixture
def result(demo: AuditResult) -> AuditResult:
    """A private deep copy of the demo result, free to modify."""
    return demo.model_copy(deep=True)


@pytest.fixture(scope="session")
def demo_html(demo: AuditResult, demo_dir: Path) -> str:
    from fairaudit.report import render_html

    return render_html(demo, demo_dir)
