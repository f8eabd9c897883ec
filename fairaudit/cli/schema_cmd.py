"""``fairaudit schema``: the spec reference (JSON Schema or markdown), with installed plugins' parameters."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fairaudit.cli.errors import handle_errors

FORMATS = ("json", "markdown")


@handle_errors
def schema(
    fmt: str = typer.Option("json", "--format", help="json (JSON Schema) or markdown (the spec reference)."),
    plugin_files: list[Path] = typer.Option(
        [], "--plugin", help="Also load this local plugin file (.py), as a spec's `plugins:` does. Repeatable."),
) -> None:
    """Print the spec's fields and every installed plugin's parameters.

    Regenerate the docs with: fairaudit schema --format markdown > docs/spec-reference.md
    (set FAIRAUDIT_DISABLE_PLUGIN_AUTOLOAD=1 to describe the built-in plugins only).
    """
    from fairaudit.errors import FairAuditError
    from fairaudit.plugins import load_plugins
    from fairaudit.spec.schema import spec_json_schema, spec_markdown

    if fmt not in FORMATS:
        raise FairAuditError(f"--format {fmt!r} is not supported; choose one of {', '.join(FORMATS)}")
    plugins = load_plugins(local_files=tuple(plugin_files))
    if fmt == "markdown":
        typer.echo(spec_markdown(plugins), nl=False)
    else:
        typer.echo(json.dumps(spec_json_schema(plugins), indent=2))
