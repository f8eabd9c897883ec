"""``fairaudit plugins``: what is installed, from where, and what failed to load."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from fairaudit.cli.errors import handle_errors

console = Console(highlight=False)


@handle_errors
def plugins(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List plugin modules, the classes they register per family, and broken plugins."""
    from fairaudit.plugins import load_plugins
    from fairaudit.registry import FAMILIES, qualifier

    ps = load_plugins()
    rows = []
    ambiguous = []
    for family in FAMILIES:
        for name, entries in ps.registry(family).ambiguous().items():
            ambiguous.append({"family": family, "name": name,
                              "distributions": [qualifier(e.source) for e in entries],
                              "use": [f"{qualifier(e.source)}:{name}" for e in entries]})
        for key, entry in ps.registry(family).items():
            name = key.rpartition(":")[2]
            rows.append({"family": family, "name": name, "qualified": f"{qualifier(entry.source)}:{name}",
                         "ambiguous": key != name, "class": entry.cls.__qualname__,
                         "plugin": entry.source.plugin, "distribution": entry.source.distribution,
                         "version": entry.source.version,
                         "description": getattr(entry.cls, "description", "")})
    failures = [{"name": f.name, "distribution": f.distribution, "version": f.version, "error": f.error}
                for f in ps.failures]
    modules = [{"name": p.name, "distribution": p.distribution, "version": p.version,
                "builtin": p.builtin, "path": p.path} for p in ps.loaded]
    if as_json:
        typer.echo(json.dumps({"plugins": modules, "registered": rows, "ambiguous": ambiguous,
                               "failures": failures}, indent=2))
        return
    table = Table(title="Registered plugins")
    for col in ("family", "name", "distribution", "version", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["family"], r["name"], r["distribution"] or r["plugin"], r["version"] or "",
                      r["description"])
    console.print(table)
    for m in modules:
        console.print(f"[dim]{'builtin' if m['builtin'] else 'entry point'}[/] {m['name']} "
                      f"({m['distribution']}=={m['version']}) {m['path']}", markup=True)
    for a in ambiguous:
        console.print("[yellow]AMBIGUOUS[/] ", end="")
        console.print(f"{a['family']} name {a['name']!r} is registered by {' and '.join(a['distributions'])}: "
                      f"a spec must name one as {' or '.join(repr(u) for u in a['use'])}", markup=False)
    for f in failures:
        console.print(f"[red]BROKEN[/] {f['name']} ({f['distribution']}=={f['version']}): {f['error']}")
