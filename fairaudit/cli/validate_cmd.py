"""``fairaudit validate SPEC``: fast static checks (no training, no data loading beyond headers)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from fairaudit.cli.errors import handle_errors

console = Console(highlight=False)


@handle_errors
def validate(spec: Path = typer.Argument(..., help="Audit spec (YAML).")) -> None:
    """Check SPEC: structure, plugin names and parameters, files and column headers."""
    from fairaudit.errors import SpecError, SpecIssue
    from fairaudit.plugins import load_plugins
    from fairaudit.spec.loader import load_spec

    loaded = load_spec(spec)
    files = tuple((loaded.base_dir / p).resolve() for p in loaded.spec.plugins)
    plugins = load_plugins(local_files=files)
    loaded = load_spec(spec, plugins=plugins)
    loader = plugins.datasets.create(loaded.spec.dataset.name, loaded.spec.dataset.params)
    problems = loader.resolve(loaded.base_dir).check(loaded.base_dir)
    if problems:
        from fairaudit.spec.loader import position

        line, col = position(loaded.tree, ("dataset", "params"))
        raise SpecError([SpecIssue(str(spec), line, col, "dataset.params", p) for p in problems])
    for failure in plugins.failures:
        console.print(f"[yellow]warning:[/] plugin {failure.name!r} failed to load: {failure.error}")
    s = loaded.spec
    console.print(f"[green]ok[/] {spec}: dataset {s.dataset.name!r}, model {s.model.name!r}, "
                  f"{len(s.debiasers)} debiaser(s), {len(s.generators)} generator(s), "
                  f"{len(s.metrics)} metric plugin(s), attributes {s.attributes}")
