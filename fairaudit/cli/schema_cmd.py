"""``fairaudit schema``: JSON Schema of the spec, including installed plugins' parameters."""

from __future__ import annotations

import json

import typer

from fairaudit.cli.errors import handle_errors


@handle_errors
def schema() -> None:
    """Print the spec's JSON Schema with every installed plugin's parameters."""
    from fairaudit.spec.schema import spec_json_schema

    typer.echo(json.dumps(spec_json_schema(), indent=2))
