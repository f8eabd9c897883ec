"""``fairaudit validate SPEC``: fast static checks (no training, no data loading beyond headers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from fairaudit.cli.errors import handle_errors

console = Console(highlight=False, soft_wrap=True)  # long lines stay whole (greppable)


@handle_errors
def validate(
    spec: Path = typer.Argument(..., help="Audit spec (YAML)."),
    allow_local_plugins: bool = typer.Option(
        False, "--allow-local-plugins",
        help="Accept local plugin files outside the spec's folder (validate imports none of them)."),
) -> None:
    """Check SPEC: structure, plugin names and parameters, files and column headers.  Nothing the
    spec names is imported or run: local plugin files are read, not executed."""
    from fairaudit.errors import SpecError
    from fairaudit.plugins import load_plugins
    from fairaudit.spec.loader import load_spec
    from fairaudit.spec.plugin_files import local_plugins

    local = local_plugins(spec, allow_outside=allow_local_plugins)  # not even YAML: raises here
    if local.files:
        console.print("[yellow]note:[/] ", end="")
        console.print(f"the spec names local plugin files ({', '.join(str(p) for p in local.paths)}): validate "
                      "reads them without running them; run imports them (a local plugin is code)", markup=False)
    plugins = load_plugins()  # installed plugins only: the spec's own files are read below
    unverified = _scan_local(local, plugins)
    loaded = load_spec(spec, plugins=plugins)  # every problem at once, plugin parameters included
    for failure in plugins.failures:
        console.print(f"[yellow]warning:[/] plugin {failure.name!r} failed to load: {failure.error}", markup=False)
    notes = _unverified_components(loaded, plugins, unverified)
    for note in notes:
        console.print("[yellow]not verified:[/] ", end="")
        console.print(note, markup=False)
    dataset = loaded.spec.dataset
    if not any(note.startswith(f"datasets {dataset.name!r}") for note in notes):
        loader = plugins.datasets.create(dataset.name, dataset.params)
        problems = loader.resolve(loaded.base_dir).check(loaded.base_dir)
        if problems:
            from fairaudit.spec.loader import issue_at

            raise SpecError([issue_at(loaded, ("dataset", "params", *_param_at_fault(dataset.params, problem)),
                                      problem) for problem in problems])
        given_scores = loader.provides_scores
    else:
        given_scores = False
    s = loaded.spec
    if not given_scores and not any(note.startswith(f"models {s.model.name!r}") for note in notes):
        _check_model_files(loaded, plugins)
    if given_scores:  # given scores: no model, no mitigations
        console.print("[green]ok[/] ", end="")  # markup for the badge only: user text stays literal
        console.print(f"{spec}: dataset {s.dataset.name!r} (given scores, no model is trained), "
                      f"{len(s.metrics)} metric plugin(s), attributes {s.attributes}", markup=False)
        return
    console.print("[green]ok[/] ", end="")
    console.print(f"{spec}: dataset {s.dataset.name!r}, model {s.model.name!r}, "
                  f"{len(s.debiasers)} debiaser(s), {len(s.generators)} generator(s), "
                  f"{len(s.metrics)} metric plugin(s), attributes {s.attributes}", markup=False)


def _check_model_files(loaded: Any, plugins: Any) -> None:
    """The files the model reads (e.g. its weights) exist, each named at its parameter's line;
    the model is only constructed (its parameters stored), never fitted or imported from."""
    from fairaudit.errors import SpecError
    from fairaudit.spec.loader import issue_at

    model_spec = loaded.spec.model
    model = plugins.models.create(model_spec.name, model_spec.params).resolve(loaded.base_dir)
    issues = []
    for path in model.input_files():
        if Path(path).is_file():
            continue
        key = next((k for k, v in model_spec.params.items() if isinstance(v, str) and Path(v).name == Path(path).name),
                   None)
        loc = ("model", "params", key) if key is not None else ("model",)
        issues.append(issue_at(loaded, loc, f"file not found: {path}"))
    if issues:
        raise SpecError(issues)


def _scan_local(local: Any, plugins: Any) -> list[str]:
    """Read (never import) each local plugin file: a file that does not parse, or registers a
    name twice, is a spec error at its ``plugins[i]`` line; the names found are registered as
    stand-ins.  Returns one note per registration that reading cannot resolve."""
    from fairaudit.errors import SpecError
    from fairaudit.spec.plugin_scan import register_scanned, scan_plugin_file

    issues, notes = [], []
    for plugin in local.files:
        try:
            scanned = scan_plugin_file(plugin.path)
        except SyntaxError as exc:
            issues.append(local.issue(plugin, f"local plugin file {plugin.path} is not valid Python: "
                                              f"{type(exc).__name__}: {exc.msg} (line {exc.lineno})"))
            continue
        except (UnicodeDecodeError, ValueError, OSError) as exc:
            issues.append(local.issue(plugin, f"local plugin file {plugin.path} cannot be read as Python: {exc}"))
            continue
        error = register_scanned(plugins, scanned)
        if error:
            issues.append(local.issue(plugin, error))
        notes += [f"{plugin.path}, line {line}: {why} ({family})" for family, line, why in scanned.dynamic]
    if issues:
        raise SpecError(issues)
    return notes


def _unverified_components(loaded: Any, plugins: Any, dynamic: list[str]) -> list[str]:
    """What validate could not check without importing a local file: each component that is a
    stand-in (its parameters) or that only a dynamic registration could provide (its name)."""
    from fairaudit.errors import PluginError
    from fairaudit.spec.plugin_scan import is_stand_in

    notes = []
    for family, _, comp in loaded.spec.components():
        try:
            cls = plugins.registry(family).get(comp.name)
        except PluginError:
            files = sorted(set(plugins.unverified.get(family, [])))
            notes.append(f"{family} {comp.name!r}: not among the names the local plugin files register "
                         f"as far as reading them shows ({', '.join(files)}); checked when run imports them")
            continue
        if is_stand_in(cls):
            notes.append(f"{family} {comp.name!r}: registered by the local file {cls.unverified_file}; "
                         "its parameters are checked when run imports it")
    local_metrics = [n.split("'")[1] for n in notes if n.startswith("metrics ")]
    if local_metrics and loaded.spec.thresholds:
        notes.append(f"thresholds: {', '.join(map(repr, loaded.spec.thresholds))} cannot be checked against the "
                     f"results of {', '.join(map(repr, local_metrics))} (a local file); run checks them")
    return notes + [f"cannot tell the name registered at {d}" for d in dynamic]


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
