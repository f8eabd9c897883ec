"""Distributions state version ranges: a library that pins exactly fights its users' own builds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYPROJECTS = sorted([REPO / "pyproject.toml", *REPO.glob("plugins/*/pyproject.toml"),
                     *REPO.glob("examples/*/pyproject.toml")])


def _requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {}).values()
    return [*project.get("dependencies", []), *(req for group in extras for req in group)]


def test_every_distribution_is_found() -> None:
    assert len(PYPROJECTS) >= 6, PYPROJECTS  # the core, four plugins, the custom-debiaser example


def test_no_exact_pins() -> None:
    pinned = [f"{p.relative_to(REPO)}: {req}" for p in PYPROJECTS for req in _requirements(p)
              if re.search(r"(?<![<>!~=])==|===", req)]
    assert pinned == [], "state a range (e.g. torch>=2.3), not an exact version:\n" + "\n".join(pinned)
