"""``fairaudit run SPEC``: run an audit and write the run folder and reports."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from fairaudit.cli.errors import handle_errors

console = Console(stderr=True, highlight=False)


@handle_errors
def run(
    spec: Path = typer.Argument(None, help="Audit spec (YAML). Not needed with --resume."),
    output: Path = typer.Option(Path("reports"), "--output", "-o", help="Folder for run folders."),
    resume: Path = typer.Option(None, "--resume", help="Resume an interrupted run folder."),
    formats: str = typer.Option(None, "--format", help="Report formats, e.g. html,pdf (default: spec)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Run the audit described by SPEC (exit 1 when a declared threshold fails)."""
    import os

    from fairaudit.audit.runner import run_audit
    from fairaudit.errors import FairAuditError

    if spec is None and resume is None:
        raise FairAuditError("give a SPEC file, or --resume RUN_DIR")
    _check_output_folder(output)
    if spec is not None:
        from fairaudit.spec.loader import declared_plugins

        local = declared_plugins(spec) or []
        if local:
            console.print(f"[yellow]note:[/] the spec runs Python code from {', '.join(local)} (plugins:); "
                          "run only specs you trust")
    if quiet:
        os.environ["FAIRAUDIT_NO_PROGRESS"] = "1"

    def say(msg: str) -> None:
        if not quiet:
            console.print(f"[dim]•[/] {msg}", markup=True, highlight=False)

    wanted = [f.strip() for f in formats.split(",")] if formats else None
    outcome = run_audit(spec, output_dir=output, resume=resume, formats=wanted, say=say)
    result = outcome.result
    console.print(f"[bold]run folder:[/] {outcome.run_dir}")
    for fmt, path in outcome.reports.items():
        console.print(f"  {fmt}: {path}")
    for note in result.warnings:  # one line each (paths stay greppable)
        console.print("[yellow]warning:[/] ", end="", soft_wrap=True)
        console.print(note, markup=False, soft_wrap=True)
    failed = [a.name for a in result.arms if a.status == "failed"]
    if failed:
        console.print(f"[yellow]arms that failed (see the report):[/] {', '.join(failed)}")
    for v in result.verdicts:
        colour = {"pass": "green", "fail": "red"}.get(v.outcome, "yellow")
        console.print(f"  [{colour}]{v.outcome.upper():>12}[/] {v.arm} · {v.metric} · {v.attribute}")
    raise typer.Exit(int(outcome.exit_code))


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
        raise FairAuditError(f"--output {output}: no permission to write in {existing}")
