"""Exception hierarchy and the CLI exit codes that go with it."""

from __future__ import annotations

import enum
import errno
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    """Exit codes of the ``fairaudit`` command (modelled on pytest's, 0-5, plus two of an audit
    that finished without a full answer, and 8 when the machine refused).  When several apply, a
    run exits with the first of 1, 6, 7."""

    OK = 0
    THRESHOLDS_FAILED = 1
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4
    PLUGIN_ERROR = 5
    #: The gate cannot judge: an arm failed, or a declared threshold got no verdict (``missing``).
    INCOMPLETE = 6
    #: The audit finished and ``result.json`` is written, but a report could not be rendered.
    REPORT_FAILED = 7
    #: The machine refused: disk full (or over quota), no permission, a read-only file system.
    #: Nothing is wrong with the spec or the data; free space or fix permissions and resume.
    MACHINE_REFUSED = 8


#: ``OSError`` numbers that mean the machine, not the spec, the data or fairaudit, refused.
MACHINE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS,
                            getattr(errno, "EDQUOT", errno.ENOSPC)})


def machine_refused(exc: BaseException) -> bool:
    """Whether ``exc`` (or the ``OSError`` it was raised from) is the machine refusing: disk full,
    no permission, read-only file system (see :data:`MACHINE_ERRNOS`)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in MACHINE_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


class FairAuditError(Exception):
    """Base class of every error fairaudit reports to a user without a traceback."""

    exit_code: ExitCode = ExitCode.USAGE_ERROR


@dataclass(frozen=True)
class SpecIssue:
    """One problem found in a spec file, with its position."""

    file: str
    line: int | None
    col: int | None
    loc: str
    msg: str
    input: str | None = None

    def format(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        got = f"  (got {self.input})" if self.input is not None else ""
        field = f"{self.loc}  " if self.loc else ""
        return f"{where}  {field}{self.msg}{got}"


class SpecError(FairAuditError):
    """The spec file is not valid; ``issues`` lists every problem at once."""

    exit_code = ExitCode.USAGE_ERROR

    def __init__(self, issues: list[SpecIssue]):
        self.issues = list(issues)
        super().__init__("\n".join(issue.format() for issue in self.issues))


class PluginError(FairAuditError):
    """A plugin could not be found, loaded or run."""

    exit_code = ExitCode.PLUGIN_ERROR


class PluginNotFound(PluginError):
    """No plugin of that family has that name."""

    def __init__(self, family: str, name: str, suggestions: list[str], available: list[str], *,
                 registered_by: list[str] | None = None):
        self.family, self.name, self.suggestions = family, name, suggestions
        if registered_by:  # ``distribution:name`` whose distribution does not register the name
            dist, _, bare = name.rpartition(":")
            super().__init__(f"unknown {family} plugin {name!r}: distribution {dist!r} does not register "
                             f"{bare!r}; it is registered by {', '.join(map(repr, registered_by))}.")
            return
        hint = f" Did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        avail = ", ".join(sorted(available)) or "none"
        super().__init__(f"unknown {family} plugin {name!r}.{hint} Installed: {avail}.")


class AmbiguousPluginError(PluginError):
    """Several distributions register the name; a spec must qualify it (``distribution:name``)."""

    exit_code = ExitCode.USAGE_ERROR

    def __init__(self, family: str, name: str, sources: list[object]):
        from fairaudit.registry import qualifier

        self.family, self.name = family, name
        self.qualified = [f"{qualifier(s)}:{name}" for s in sources]  # type: ignore[arg-type]
        by = " and by ".join(str(s) for s in sources)
        super().__init__(f"{family} plugin name {name!r} is ambiguous: it is registered by {by}; name the "
                         f"one you mean as {' or '.join(map(repr, self.qualified))}")


class DuplicatePluginError(PluginError):
    """Two plugins registered the same name in one family."""


class PluginLoadError(PluginError):
    """A plugin's entry point failed to import or register."""


class DataError(FairAuditError):
    """The data do not fit the spec: missing column, tiny group, mismatched lengths..."""

    exit_code = ExitCode.USAGE_ERROR


class MachineRefused(FairAuditError):
    """The machine refused what fairaudit asked of it (disk full, no permission, read-only)."""

    exit_code = ExitCode.MACHINE_REFUSED


class ReportError(FairAuditError):
    """A report could not be rendered."""

    exit_code = ExitCode.INTERNAL_ERROR


class TrainingError(FairAuditError):
    """Training diverged (NaN loss) or otherwise failed."""

    exit_code = ExitCode.INTERNAL_ERROR


class CheckpointError(FairAuditError):
    """A checkpoint is missing, corrupted or does not match the model."""

    exit_code = ExitCode.USAGE_ERROR


class DeviceError(TrainingError):
    """The requested device is not available (e.g. ``device: cuda`` with ``on_missing_cuda: fail``)."""

    exit_code = ExitCode.USAGE_ERROR


class RunInterrupted(KeyboardInterrupt):
    """An audit stopped by Ctrl-C or SIGTERM; its finished arms are kept in ``run_dir``."""

    def __init__(self, run_dir: object, cause: str = "interrupted", *, allow_local_plugins: bool = False):
        self.run_dir = run_dir
        flag = " --allow-local-plugins" if allow_local_plugins else ""  # the run needed it: so does resume
        super().__init__(f"{cause}; the finished arms are kept: resume with fairaudit run --resume {run_dir}{flag}")
