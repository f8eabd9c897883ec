"""``fairaudit validate SPEC``: fast static checks (no training, no data loading beyond headers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from fairaudit.cli.errors import handle_errors

console = Console(highlight=False)


@handle_errors
def validate(spec: Path = typer.Argument(..., help="Audit spec (YAML).")) -> None:
    """Check SPEC: structure, plugin names and parameters, files and column headers."""
    from fairaudit.errors import SpecError, SpecIssue
    from fairaudit.plugins import load_plugins
    from fairaudit.spec.loader import load_spec, local_plugin_files

    files = local_plugin_files(spec)  # not even YAML: raises here
    if files:
        console.print(f"[yellow]note:[/] the spec runs Python code from {', '.join(map(str, files))} "
                      "(plugins:); validate and run only specs you trust")
    plugins = load_plugins(local_files=files)
    loaded = load_spec(spec, plugins=plugins)  # every problem at once, plugin parameters included
    loader = plugins.datasets.create(loaded.spec.dataset.name, loaded.spec.dataset.params)
    problems = loader.resolve(loaded.base_dir).check(loaded.base_dir)
    if problems:
        from fairaudit.spec.loader import field_path, position

        issues = []
        for problem in problems:
            loc = ("dataset", "params", *_param_at_fault(loaded.spec.dataset.params, problem))
            line, col = position(loaded.tree, loc)
            issues.append(SpecIssue(str(spec), line, col, field_path(loc), problem))
        raise SpecError(issues)
    for failure in plugins.failures:
        console.print(f"[yellow]warning:[/] plugin {failure.name!r} failed to load: {failure.error}")
    s = loaded.spec
    if loader.provides_scores:  # given scores: no model, no mitigations
        console.print(f"[green]ok[/] {spec}: dataset {s.dataset.name!r} (given scores, no model is trained), "
                      f"{len(s.metrics)} metric plugin(s), attributes {s.attributes}")
        return
    console.print(f"[green]ok[/] {spec}: dataset {s.dataset.name!r}, model {s.model.name!r}, "
                  f"{len(s.debiasers)} debiaser(s), {len(s.generators)} generator(s), "
                  f"{len(s.metrics)} metric plugin(s), attributes {s.attributes}")


def _param_at_fault(params: dict[str, Any], problem: str) -> tuple[Any, ...]:
    """The dataset parameter a data problem is about, for its line in the spec: a value quoted in
    the message (``no column 'sexx'``) first, else a path the message names; ``()`` if none."""
    quoted: list[tuple[tuple[int, int], tuple[Any, ...]]] = []
    paths: list[tuple[tuple[int, int], tuple[Any, ...]]] = []
    for loc, text in _param_texts(params):
        if repr(text) in problem:
            quoted.append(((len(text), -problem.index(repr(text))), loc))  # ties: the first named
        elif _names_path(text, problem):
            paths.append(((len(text), 0), loc))
    best = quoted or paths
    return max(best, key=lambda hit: hit[0])[1] if best else ()


def _param_texts(params: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """``(location, text)`` of every non-blank string among the parameters, one level into lists
    and mappings (whose keys count too)."""
    found: list[tuple[tuple[Any, ...], Any]] = []
    for key, value in params.items():
        if isinstance(value, dict):
            found += [((key, k), v) for k, v in value.items()] + [((key, k), k) for k in value]
        elif isinstance(value, list):
            found += [((key, i), v) for i, v in enumerate(value)]
        else:
            found.append(((key,), value))
    return [(loc, text) for loc, text in found if isinstance(text, str) and text.strip()]


def _names_path(text: str, problem: str) -> bool:
    """Whether ``problem`` names ``text`` as a path (as written, or with ``~`` expanded)."""
    return any(ch in text for ch in "./\\") and (str(Path(text)) in problem
                                                 or str(Path(text).expanduser()) in problem)
