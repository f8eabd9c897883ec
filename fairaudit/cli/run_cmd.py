"""``fairaudit run SPEC``: run an audit and write the run folder and reports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from fairaudit.cli.errors import handle_errors

if TYPE_CHECKING:
    from fairaudit.audit.runner import RunOutcome

console = Console(stderr=True, highlight=False)


@handle_errors
def run(
    spec: Path = typer.Argument(None, help="Audit spec (YAML). Not needed with --resume."),
    output: Path = typer.Option(Path("reports"), "--output", "-o", help="Folder for run folders."),
    resume: Path = typer.Option(None, "--resume", help="Resume an interrupted run folder."),
    formats: str = typer.Option(None, "--format", help="Report formats, e.g. html,pdf (default: spec)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    allow_local_plugins: bool = typer.Option(
        False, "--allow-local-plugins",
        help="Load the spec's local plugin files (plugins:) even from outside the spec's folder. "
             "A local plugin is code: use only with files you trust."),
) -> None:
    """Run the audit described by SPEC (exit 1 when a declared threshold fails, 6 when the gate
    cannot judge: a failed arm or a threshold without a verdict; 7 when a report failed to render;
    8 when the machine refused: disk full, no permission, a read-only file system)."""
    from fairaudit.audit.runner import run_audit
    from fairaudit.errors import FairAuditError

    if spec is None and resume is None:
        raise FairAuditError("give a SPEC file, or --resume RUN_DIR")
    _check_output_folder(output)
    if spec is not None:
        from fairaudit.spec.plugin_files import local_plugins

        local = local_plugins(spec, allow_outside=allow_local_plugins).files  # refused ones: a spec error
        if local:
            console.print("[yellow]note:[/] the spec runs Python code from ", end="")
            console.print(f"{', '.join(str(p.path) for p in local)} (plugins:); run only specs you trust",
                          markup=False, soft_wrap=True)

    announced: set[str] = set()

    def say(msg: str) -> None:
        if msg.startswith("warning: "):
            if msg in announced:  # each warning once
                return
            announced.add(msg)
        if not quiet:
            console.print(f"[dim]•[/] {escape(msg)}", highlight=False)

    wanted = [f.strip() for f in formats.split(",")] if formats else None
    outcome = run_audit(spec, output_dir=output, resume=resume, formats=wanted, say=say,
                        progress=_progress_wanted(quiet), allow_local_plugins=allow_local_plugins)
    _print_outcome(outcome, shown=set() if quiet else {m.removeprefix("warning: ") for m in announced})
    raise typer.Exit(int(outcome.exit_code))


def _progress_wanted(quiet: bool) -> bool:
    """Progress bars unless ``-q`` or ``FAIRAUDIT_NO_PROGRESS=1`` (read here only)."""
    import os

    return not quiet and os.environ.get("FAIRAUDIT_NO_PROGRESS", "") in ("", "0")


def _print_outcome(outcome: RunOutcome, shown: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Run folder, reports, warnings (but those already ``shown`` as the run went), what the gate
    could not judge, verdicts (even with ``-q``)."""
    result = outcome.result
    console.print("[bold]run folder:[/] ", end="")
    console.print(str(outcome.run_dir), markup=False, soft_wrap=True)
    for fmt, path in outcome.reports.items():
        console.print(f"  {fmt}: {path}", markup=False, soft_wrap=True)
    for note in result.warnings:  # one line each (paths stay greppable)
        if note in shown:
            continue
        console.print("[yellow]warning:[/] ", end="", soft_wrap=True)
        console.print(note, markup=False, soft_wrap=True)
    if outcome.report_error:
        console.print("[red]report rendering failed:[/] ", end="", soft_wrap=True)
        console.print(f"{outcome.report_error} (result.json is kept: fairaudit report {outcome.run_dir})",
                      markup=False, soft_wrap=True)
    for reason in outcome.unjudged:
        console.print("[red]cannot judge:[/] ", end="", soft_wrap=True)
        console.print(reason, markup=False, soft_wrap=True)
    for v in result.verdicts:
        colour = {"pass": "green", "fail": "red"}.get(v.outcome, "yellow")
        console.print(f"  [{colour}]{v.outcome.upper():>12}[/] ", end="")
        console.print(f"{v.arm} · {v.metric} · {v.attribute or 'all'}", markup=False)  # as the report names it


def _check_output_folder(output: Path) -> None:
    """Fail early, naming ``--output``, when the run folder could not be created there."""
    import os

    from fairaudit.errors import FairAuditError

    folder = Path(output).expanduser()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FairAuditError(f"--output {output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        from fairaudit.errors import MachineRefused

        raise MachineRefused(f"--output {output}: no permission to write in {existing}")
