"""Print user errors as a clean message with the right exit code; keep tracebacks for bugs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from fairaudit.errors import ExitCode, FairAuditError, SpecError

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def handle_errors(fn: F) -> F:
    """Turn :class:`FairAuditError` into a message and its exit code (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except SpecError as exc:
            err_console.print(f"[bold red]The spec has {len(exc.issues)} problem(s):[/]")
            for issue in exc.issues:
                err_console.print("  " + issue.format(), markup=False)
            raise typer.Exit(int(exc.exit_code)) from None
        except FairAuditError as exc:
            err_console.print(f"[bold red]error:[/] {type(exc).__name__}: ", end="")
            err_console.print(str(exc), markup=False)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper  # type: ignore[return-value]
