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

    if spec is None and resume is None:
        raise typer.BadParameter("give a SPEC file, or --resume RUN_DIR")
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
    failed = [a.name for a in result.arms if a.status == "failed"]
    if failed:
        console.print(f"[yellow]arms that failed (see the report):[/] {', '.join(failed)}")
    for v in result.verdicts:
        colour = {"pass": "green", "fail": "red"}.get(v.outcome, "yellow")
        console.print(f"  [{colour}]{v.outcome.upper():>12}[/] {v.arm} · {v.metric} · {v.attribute}")
    raise typer.Exit(int(outcome.exit_code))
