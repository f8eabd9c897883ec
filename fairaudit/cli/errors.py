"""Print user errors as a clean message with the right exit code; keep tracebacks for bugs."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

import typer
from rich.console import Console

from fairaudit.errors import MACHINE_ERRNOS, ExitCode, FairAuditError, RunInterrupted, SpecError, machine_refused

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

#: At most this many spec problems are printed (an alias bomb or a pasted list can make thousands).
MAX_ISSUES_SHOWN = 50

#: Said after an error the machine caused (exit 8).
REFUSED_HINT = (" (the machine refused: free disk space or fix permissions, then run again or resume with "
                "fairaudit run --resume RUN_DIR)")


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    """Print a Python warning as one ``warning: ...`` line (no source line, no file of ours)."""
    label = "warning" if category is UserWarning else f"warning ({category.__name__})"
    err_console.print(f"[yellow]{label}:[/] ", end="")
    err_console.print(str(message), markup=False)


def handle_errors(fn: F) -> F:
    """Turn :class:`FairAuditError` into a message and its exit code (no traceback), and print
    Python warnings raised meanwhile as plain ``warning:`` lines."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = show_warning
                return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except SpecError as exc:
            err_console.print(f"[bold red]The spec has {len(exc.issues)} problem(s):[/]")
            for issue in exc.issues[:MAX_ISSUES_SHOWN]:
                err_console.print("  " + issue.format(), markup=False)
            if len(exc.issues) > MAX_ISSUES_SHOWN:
                err_console.print(f"  ... and {len(exc.issues) - MAX_ISSUES_SHOWN} more")
            raise typer.Exit(int(exc.exit_code)) from None
        except FairAuditError as exc:
            refused = machine_refused(exc)
            err_console.print(f"[bold red]error:[/] {type(exc).__name__}: ", end="")
            err_console.print(str(exc) + (REFUSED_HINT if refused else ""), markup=False)
            raise typer.Exit(int(ExitCode.MACHINE_REFUSED if refused else exc.exit_code)) from None
        except OSError as exc:
            if exc.errno not in MACHINE_ERRNOS:  # only the machine refusing is exit 8
                raise
            err_console.print(f"[bold red]error:[/] {type(exc).__name__}: ", end="")
            err_console.print(str(exc) + REFUSED_HINT, markup=False)
            raise typer.Exit(int(ExitCode.MACHINE_REFUSED)) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM during a run
            err_console.print("[yellow]interrupted[/]", end="")
            err_console.print(f": {exc}" if isinstance(exc, RunInterrupted) else "", markup=False)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper  # type: ignore[return-value]
