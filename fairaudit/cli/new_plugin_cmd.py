"""``fairaudit new-plugin NAME``: scaffold an installable plugin package that passes the kit."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.console import Console

from fairaudit.cli.errors import handle_errors
from fairaudit.scaffold import KINDS

console = Console(highlight=False)


@handle_errors
def new_plugin(
    name: str = typer.Argument(..., help="Plugin name, e.g. 'mean_projection' (becomes the YAML key)."),
    kind: str = typer.Option("debiaser", "--kind", help=f"Plugin family: {', '.join(KINDS)}."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to create the package folder."),
) -> None:
    """Create fairaudit-NAME/ with pyproject (entry point), class, conformance test and README."""
    from fairaudit.errors import FairAuditError
    from fairaudit.scaffold import render_scaffold

    if kind not in KINDS:
        raise FairAuditError(f"--kind {kind!r} is not supported; choose one of {', '.join(KINDS)}")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise FairAuditError(f"plugin name {name!r}: use lowercase letters, digits and underscores")
    target = render_scaffold(name, kind, directory)
    console.print(f"created {target} ({kind} {name!r}, class in {target.name.replace('-', '_')}/"
                  f"{KINDS[kind].module}.py)\nnext steps:\n  1. pip install -e {target}\n"
                  f"  2. fairaudit plugins   (shows {name!r})\n  3. pytest {target}")
