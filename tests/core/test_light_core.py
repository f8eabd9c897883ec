"""Import-time rules: ``import fairaudit`` and the CLI's start pull in no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import fairaudit

HEAVY = ("sklearn", "pandas", "torch", "scipy")
#: fairaudit's own heavy layers: the CLI must import them only inside the command that runs.
INTERNALS = ("fairaudit.audit", "fairaudit.spec", "fairaudit.report", "fairaudit.builtin", "fairaudit.plugins")


def _loaded(code: str, prefixes: tuple[str, ...]) -> list[str]:
    """Top modules among ``prefixes`` that a fresh interpreter running ``code`` has imported."""
    found = f"{{p for m in sys.modules for p in {prefixes!r} if (m + '.').startswith(p + '.')}}"
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({found})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statement", ["import fairaudit", "import fairaudit.base", "import fairaudit.errors",
                                       "from fairaudit import BaseDebiaser, Registry, hookimpl"])
def test_core_imports_no_heavy_library(statement: str) -> None:
    assert _loaded(statement, HEAVY) == []


def test_cli_help_imports_neither_heavy_libraries_nor_internals() -> None:
    code = "import sys\nsys.argv = ['fairaudit', '--help']\nfrom fairaudit.cli.app import main\ntry:\n    main()\n" \
           "except SystemExit:\n    pass"
    assert _loaded(code, HEAVY + INTERNALS) == []


def test_every_public_name_resolves_and_is_listed() -> None:
    assert set(fairaudit.__all__) == {*fairaudit._EXPORTS, "__version__"}
    for name in fairaudit.__all__:
        assert getattr(fairaudit, name) is not None, name
    assert set(fairaudit.__all__) <= set(dir(fairaudit))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        fairaudit.not_a_name  # noqa: B018


def test_exports_are_the_defining_objects() -> None:
    from fairaudit.base import BaseDebiaser
    from fairaudit.registry import Registry

    assert fairaudit.BaseDebiaser is BaseDebiaser and fairaudit.Registry is Registry
