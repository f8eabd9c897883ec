"""``fairaudit new-plugin`` scaffolds a package that passes the conformance kit immediately."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
from typer.testing import CliRunner

from fairaudit.cli.app import app


def test_scaffold_layout_and_kit(tmp_path, monkeypatch):
    result = CliRunner().invoke(app, ["new-plugin", "mean_projection", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "fairaudit-mean-projection"
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["fairaudit"] == {
        "mean_projection": "fairaudit_mean_projection.plugin"}
    assert (root / "tests" / "test_conformance.py").is_file() and (root / "README.md").is_file()
    monkeypatch.syspath_prepend(str(root))
    from fairaudit_mean_projection.debiaser import MeanProjectionDebiaser

    from fairaudit.testing import check_debiaser

    check_debiaser(MeanProjectionDebiaser)
    again = CliRunner().invoke(app, ["new-plugin", "mean_projection", "--dir", str(tmp_path)])
    assert again.exit_code == 4 and "already exists" in again.output
    for mod in [m for m in sys.modules if m.startswith("fairaudit_mean_projection")]:
        sys.modules.pop(mod)


def test_bad_name_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["new-plugin", "Bad-Name", "--dir", str(tmp_path)])
    assert result.exit_code == 4 and "lowercase" in result.output


@pytest.mark.slow
def test_scaffold_installs_and_its_own_test_passes(tmp_path):
    CliRunner().invoke(app, ["new-plugin", "scaffold_probe", "--dir", str(tmp_path)])
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
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "fairaudit-scaffold-probe"],
                       check=False)
