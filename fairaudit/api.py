"""The notebook API: audit a model's scores from a DataFrame in one call, or run any spec given
as a dict or a file, and get the :class:`~fairaudit.results.AuditResult` back.

Both write an ordinary run folder (``<output>/<name>/<timestamp>/``), so ``fairaudit report``
and ``fairaudit run --resume`` work on it as on any other.  Neither imports torch for an audit
of given scores.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fairaudit import atomic
from fairaudit.errors import FairAuditError

if TYPE_CHECKING:
    import pandas as pd

    from fairaudit.audit.runner import RunOutcome
    from fairaudit.results import AuditResult

__all__ = ["audit_predictions", "run"]

#: Report formats the notebook API renders by default (the PDF is one ``write_report`` away).
DEFAULT_FORMATS: tuple[str, ...] = ("html",)


def audit_predictions(
    df_or_path: pd.DataFrame | str | Path,
    *,
    target: str,
    score: str | Mapping[str, str],
    sensitive: Sequence[str],
    patient_id: str | None = None,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    statistics: Mapping[str, Any] | None = None,
    title: str | None = None,
    threshold: float = 0.5,
    output: str | Path = "reports",
    name: str = "predictions",
    score_kind: str = "probability",
    split_column: str | None = None,
    bins: Mapping[str, Any] | None = None,
    metrics: Sequence[str | Mapping[str, Any]] | None = None,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> AuditResult:
    """Audit the scores of one model (``score="column"``) or several (``score={"name": "column"}``,
    the first the reference of the paired comparison) against the labels and groups of the same rows.

    ``df_or_path`` is a DataFrame (written to ``<output>/<name>-input/predictions.parquet`` so
    that the run folder's spec names a stable file) or a CSV/Parquet file.  ``thresholds`` are the
    spec's (``{"equal_opportunity_difference": {"max": 0.1}}``), ``statistics`` its statistics
    section (``{"n_boot": 1000}``), ``threshold`` the decision threshold on the scores.  The
    spec, the data file's path and every option are recorded in the run folder.
    """
    folder = Path(output) / f"{_checked_name(name)}-input"
    data_path = _data_file(df_or_path, folder)
    params: dict[str, Any] = {"path": str(data_path), "target": target, "sensitive": list(sensitive),
                              "score": score if isinstance(score, str) else dict(score)}
    optional = {"patient_id": patient_id, "split_column": split_column, "bins": dict(bins) if bins else None}
    params.update({k: v for k, v in optional.items() if v is not None})
    if score_kind != "probability":
        params["score_kind"] = score_kind
    spec: dict[str, Any] = {"name": name, "dataset": {"name": "predictions", "params": params},
                            "attributes": list(sensitive), "decision_threshold": threshold,
                            "report": {"formats": list(formats)}}
    extra = {"title": title, "thresholds": _plain(thresholds), "statistics": _plain(statistics),
             "metrics": _plain(list(metrics)) if metrics is not None else None}
    spec.update({k: v for k, v in extra.items() if v is not None})
    return _run_dict(spec, folder, Path(output), base_dir=Path.cwd())


def run(spec: Mapping[str, Any] | str | Path, output: str | Path | None = None, *,
        allow_local_plugins: bool = False) -> AuditResult:
    """Run an audit spec: a YAML file, or a dict with the same content (written as YAML to
    ``<output>/<name>-input/spec.yaml``; its relative paths resolve against the current folder).
    Reports are rendered in the spec's formats; the result is returned (its run folder is in
    the console output and under ``output``, default ``reports``).

    A local plugin file (``plugins:``) is code: it is loaded only from inside the spec's folder
    tree (the current folder for a dict), unless ``allow_local_plugins=True``."""
    out = Path(output) if output is not None else Path("reports")
    if isinstance(spec, Mapping):
        name = _checked_name(spec.get("name"))
        return _run_dict(dict(spec), out / f"{name}-input", out, base_dir=Path.cwd(),
                         allow_local_plugins=allow_local_plugins)
    from fairaudit.audit.runner import run_audit

    return _located(run_audit(spec, output_dir=out, progress=False, allow_local_plugins=allow_local_plugins))


# ---------------------------------------------------------------- pieces
def _run_dict(spec: dict[str, Any], folder: Path, output: Path, *, base_dir: Path,
              allow_local_plugins: bool = False) -> AuditResult:
    """Write ``spec`` as YAML into ``folder`` and run it (relative paths against ``base_dir``)."""
    from fairaudit.audit.runner import run_audit

    spec_path = atomic.write_text(folder / "spec.yaml", _yaml(spec))
    return _located(run_audit(spec_path, output_dir=output, progress=False, base_dir=base_dir,
                              allow_local_plugins=allow_local_plugins))


def _located(outcome: RunOutcome) -> AuditResult:
    """The outcome's result, knowing its run folder (``result.run_dir``)."""
    outcome.result._run_dir = outcome.run_dir.resolve()
    return outcome.result


def _data_file(df_or_path: Any, folder: Path) -> Path:
    """The table's file: a path as given (absolute), or a DataFrame written as Parquet."""
    if isinstance(df_or_path, str | Path):
        path = Path(df_or_path).expanduser().resolve()
        if not path.is_file():
            raise FairAuditError(f"data file not found: {path}")
        return path
    if not hasattr(df_or_path, "to_parquet"):
        raise FairAuditError(f"audit_predictions takes a pandas DataFrame or the path of a CSV/Parquet file, "
                             f"not {type(df_or_path).__name__}")
    frame = df_or_path.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    path = folder / "predictions.parquet"
    with atomic.atomic_open(path, "wb") as fh:
        frame.to_parquet(fh, index=False)
    return path.resolve()


def _checked_name(name: Any) -> str:
    """A spec name that is also a safe folder name (the spec's own rule)."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise FairAuditError(f"name {name!r}: use letters, digits, '_', '.' and '-' (it names the run folder)")
    return name


def _plain(value: Any) -> Any:
    """Mappings and sequences as plain dicts and lists (for the YAML writer)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return value.item()
    return value


def _yaml(data: dict[str, Any]) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    buf = io.StringIO()
    yaml.dump(_plain(data), buf)
    return buf.getvalue()
