"""``fairaudit`` entry point: registers the subcommands (heavy imports stay inside commands)."""

from __future__ import annotations

import sys

import typer

from fairaudit.cli import new_plugin_cmd, plugins_cmd, report_cmd, run_cmd, schema_cmd, validate_cmd
from fairaudit.errors import ExitCode

app = typer.Typer(
    name="fairaudit",
    help="Audit and mitigate demographic bias in medical-imaging AI.\n\n"
         "Exit codes: 0 ok; 1 a declared fairness threshold failed; 2 interrupted; 3 internal error; "
         "4 usage, spec or data error; 5 plugin error; 6 the gate cannot judge (a failed arm, a threshold "
         "without a verdict); 7 a report could not be rendered (result.json is kept); 8 the machine "
         "refused (disk full, no permission, read-only file system).",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
app.command("run")(run_cmd.run)
app.command("validate")(validate_cmd.validate)
app.command("plugins")(plugins_cmd.plugins)
app.command("report")(report_cmd.report)
app.command("schema")(schema_cmd.schema)
app.command("new-plugin")(new_plugin_cmd.new_plugin)


def main() -> None:
    """Console-script entry point; unexpected errors exit with code 3 and a hint."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        print("interrupted", file=sys.stderr)
        sys.exit(int(ExitCode.INTERRUPTED))
    except typer.TyperException as exc:  # usage errors (missing argument, unknown option): exit 4, not 2
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"error: {exc}", file=sys.stderr)
        sys.exit(int(ExitCode.USAGE_ERROR))
    except SystemExit:
        raise
    except Exception:
        import traceback

        traceback.print_exc()
        print("\nfairaudit hit an internal error (a bug): please report it with the traceback above.",
              file=sys.stderr)
        sys.exit(int(ExitCode.INTERNAL_ERROR))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
