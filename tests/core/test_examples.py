"""Every example spec validates against the installed plugins (``fairaudit validate``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairaudit.testing.runs import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPECS = sorted(p for p in EXAMPLES.rglob("*.yaml"))


@pytest.mark.parametrize("spec", SPECS, ids=[str(p.relative_to(EXAMPLES)) for p in SPECS])
def test_example_validates(spec: Path):
    result = cli("validate", spec, catch_exceptions=True)
    assert result.exit_code == 0, result.output
    assert "ok " in result.output and "[green]" not in result.output  # console markup rendered, not printed


def test_there_are_examples():
    assert len(SPECS) >= 3
