"""``fairaudit report RUN_DIR``: re-render the reports from ``result.json`` without retraining."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from fairaudit.cli.errors import handle_errors

console = Console(highlight=False)


@handle_errors
def report(
    run_dir: Path = typer.Argument(..., help="A run folder containing result.json."),
    formats: str = typer.Option("html,pdf", "--format", help="Comma-separated: html, pdf."),
) -> None:
    """Re-render report.html / report.pdf of RUN_DIR."""
    from fairaudit.audit.runner import render_reports
    from fairaudit.errors import FairAuditError

    if not (run_dir / "result.json").is_file():
        raise FairAuditError(f"{run_dir} has no result.json; is it a fairaudit run folder?")
    written = render_reports(run_dir, [f.strip() for f in formats.split(",") if f.strip()])
    for fmt, path in written.items():
        console.print(f"{fmt}: {path}")
