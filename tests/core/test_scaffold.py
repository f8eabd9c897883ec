"""``fairaudit new-plugin`` scaffolds a package that passes the conformance kit immediately."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fairaudit.scaffold import KINDS
from fairaudit.testing.runs import cli


def _scaffold(tmp_path: Path, name: str, kind: str) -> Path:
    result = cli("new-plugin", name, "--kind", kind, "--dir", str(tmp_path), catch_exceptions=True)
    assert result.exit_code == 0, result.output
    return tmp_path / f"fairaudit-{name.replace('_', '-')}"


def test_scaffold_layout_and_kit(tmp_path, monkeypatch):
    root = _scaffold(tmp_path, "mean_projection", "debiaser")
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["fairaudit"] == {
        "mean_projection": "fairaudit_mean_projection.plugin"}
    assert (root / "tests" / "test_conformance.py").is_file() and (root / "README.md").is_file()
    monkeypatch.syspath_prepend(str(root))
    from fairaudit_mean_projection.debiaser import MeanProjectionDebiaser

    from fairaudit.testing import check_debiaser

    check_debiaser(MeanProjectionDebiaser)
    again = cli("new-plugin", "mean_projection", "--dir", str(tmp_path), catch_exceptions=True)
    assert again.exit_code == 4 and "already exists" in again.output
    for mod in [m for m in sys.modules if m.startswith("fairaudit_mean_projection")]:
        sys.modules.pop(mod)


def test_every_kind_passes_its_own_test_before_install(tmp_path):
    """Each generated package's own test (conformance kit + hook) passes with only PYTHONPATH set.

    The three packages are tested in one pytest process (``--import-mode=importlib``: their test
    files share a name) to pay the interpreter start-up once.
    """
    roots = []
    for kind, spec in KINDS.items():
        name = f"probe_{kind}"
        root = _scaffold(tmp_path, name, kind)
        package = f"fairaudit_{name}"
        meta = tomllib.loads((root / "pyproject.toml").read_text())
        assert meta["project"]["entry-points"]["fairaudit"] == {name: f"{package}.plugin"}
        assert meta["project"]["dependencies"] == ["fairaudit"]
        for path in ("README.md", f"{package}/__init__.py", f"{package}/plugin.py", f"{package}/{spec.module}.py",
                     "tests/test_conformance.py"):
            assert (root / path).is_file(), path
        for path in root.rglob("*.*"):
            assert "{{" not in path.read_text(), f"unfilled placeholder in {path}"
        assert f"name: {name}" in (root / "README.md").read_text()
        assert f"fairaudit_register_{spec.family}" in (root / package / "plugin.py").read_text()
        roots.append(root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, roots), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "FAIRAUDIT_NO_PROGRESS": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                          "--import-mode=importlib", "--rootdir", str(tmp_path), *map(str, roots)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 3 * 4, output  # every kit check + the hook test, per kind
    # only the post-install entry-point test is skipped, once per kind
    assert f"{len(KINDS)} skipped" in output and output.count("entry point not installed") == len(KINDS), output


def test_unknown_kind_is_refused(tmp_path):
    result = cli("new-plugin", "probe", "--kind", "report_section", "--dir", str(tmp_path), catch_exceptions=True)
    assert result.exit_code == 4
    assert all(kind in result.output for kind in KINDS)
    assert not any(tmp_path.iterdir())


def test_bad_name_is_refused(tmp_path):
    result = cli("new-plugin", "Bad-Name", "--dir", str(tmp_path), catch_exceptions=True)
    assert result.exit_code == 4 and "lowercase" in result.output


@pytest.mark.slow
def test_scaffold_installs_and_its_own_test_passes(tmp_path):
    cli("new-plugin", "scaffold_probe", "--dir", str(tmp_path), catch_exceptions=True)
    root = tmp_path / "fairaudit-scaffold-probe"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(root)]
    subprocess.run(pip, check=True)
    try:
        listed = subprocess.run([sys.executable, "-m", "fairaudit.cli.app", "plugins", "--json"],
                                capture_output=True, text=True, check=True).stdout
        assert '"scaffold_probe"' in listed
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                str(root / "tests")], capture_output=True, text=True, cwd=root)
        assert tests.returncode == 0, tests.stdout + tests.stderr
        assert "skipped" not in tests.stdout  # installed: the entry-point test runs too
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "fairaudit-scaffold-probe"],
                       check=False)
