"""The run folder: ``reports/<spec-name>/<timestamp>/`` with atomic writes and a log file."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fairaudit import atomic
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError

LOG = logging.getLogger("fairaudit")


def new_run_dir(output_dir: Path, spec_name: str) -> Path:
    """A fresh, unique run folder (created with the user's umask), named after the spec's
    ``name`` (a long name is cut and suffixed with its hash: a file name has at most 255 bytes)."""
    from fairaudit.audit.resume import safe_name

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(output_dir) / safe_name(spec_name)
    run_dir = base / stamp
    suffix = 1
    while run_dir.exists():
        run_dir = base / f"{stamp}-{suffix}"
        suffix += 1
    run_dir.mkdir(parents=True)
    return run_dir


def remove_stale_temp_files(run_dir: Path) -> list[Path]:
    """Delete the temp files of atomic writes a killed run left behind (``.<name>.<random>.tmp``)."""
    stale = [p for p in Path(run_dir).rglob(atomic.TEMP_GLOB) if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def attach_log(run_dir: Path) -> logging.Handler:
    """Log to ``run_dir/log.txt`` (appending, so a resumed run keeps its history)."""
    handler = logging.FileHandler(run_dir / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    return handler


def detach_log(handler: logging.Handler) -> None:
    LOG.removeHandler(handler)
    handler.close()


def git_hash(path: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def data_hash(dataset: AuditDataset) -> str:
    """SHA-256 (first 16 hex digits) of the inputs (or given scores), labels and attributes."""
    h = hashlib.sha256()
    from fairaudit.outofcore import update_hash

    if dataset.modality == "scores":
        for name, scores in (dataset.scores or {}).items():
            h.update(name.encode("utf-8", "surrogatepass") + b"\0")
            h.update(np.ascontiguousarray(scores, dtype=np.float64).tobytes())
    else:
        update_hash(h, dataset.inputs)  # chunk by chunk for memory-mapped inputs; same digest
    h.update(np.ascontiguousarray(dataset.y).tobytes())
    h.update(dataset.sensitive.astype(str).to_csv(index=False).encode())
    return h.hexdigest()[:16]


def file_digests(paths: list[Path]) -> dict[str, str]:
    """SHA-256 (first 16 hex digits) of each existing file, by path (missing files: left out)."""
    out: dict[str, str] = {}
    for path in paths:
        if Path(path).is_file():
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda f=fh: f.read(1 << 20), b""):
                    h.update(block)
            out[str(path)] = h.hexdigest()[:16]
    return out


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: version(name) for name in (
            "fairaudit", "torch", "numpy", "scikit-learn", "fairlearn", "pandas", "weasyprint")},
    }


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    atomic.write_json(run_dir / "manifest.json", manifest)


def mark_manifest(run_dir: Path, **fields: Any) -> None:
    """Update fields of an existing ``manifest.json`` (e.g. ``status="failed"``); never raises."""
    path = run_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        manifest.update(fields)
        write_manifest(run_dir, manifest)
    except Exception as exc:  # the original error matters more than the bookkeeping
        LOG.warning("could not update %s: %s", path, exc)


# ---------------------------------------------------------------- reading a run folder back
#: Keys every manifest has had since the first write of a run.
MANIFEST_KEYS = ("spec_name", "spec_dir", "status")


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``manifest.json`` (``None`` when there is none); a truncated or incomplete one
    is a :class:`DataError` saying so."""
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is truncated or not JSON ({exc}); this run folder cannot be resumed: "
                        "start a new run from its spec.yaml") from None
    missing = [k for k in MANIFEST_KEYS if not isinstance(manifest, dict) or k not in manifest]
    if missing:
        raise DataError(f"{path} is incomplete (no {', '.join(missing)}); this run folder cannot be resumed: "
                        "start a new run from its spec.yaml")
    return manifest


def read_result(run_dir: Path) -> Any:
    """The run's ``result.json`` as an :class:`~fairaudit.results.AuditResult`; a missing,
    truncated or incomplete one is a :class:`DataError` saying so."""
    import pydantic

    from fairaudit.results import read_result as read_any_version

    path = Path(run_dir) / "result.json"
    if not path.is_file():
        raise DataError(f"{run_dir} has no result.json; is it a fairaudit run folder?")
    try:
        return read_any_version(path)
    except ValueError as exc:
        if not isinstance(exc, pydantic.ValidationError):  # not JSON at all
            raise DataError(f"{path} is truncated or incomplete (not JSON: {exc}); delete it and resume the run "
                            "(fairaudit run --resume RUN_DIR) to write it again") from None
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DataError(f"{path} is truncated or incomplete ({first['msg']}{' at ' + where if where else ''}); "
                        "delete it and resume the run (fairaudit run --resume RUN_DIR) to write it again") from None


def refuse_links(run_dir: Path) -> None:
    """A run folder to resume holds only what the run wrote: refuse symbolic links inside it
    (resuming would read or overwrite whatever they point to)."""
    links: list[str] = []
    for folder, dirs, files in os.walk(run_dir, followlinks=False):
        links += [os.path.relpath(os.path.join(folder, n), run_dir) for n in (*dirs, *files)
                  if os.path.islink(os.path.join(folder, n))]
    if links:
        shown = ", ".join(sorted(links)[:5]) + (f" and {len(links) - 5} more" if len(links) > 5 else "")
        raise DataError(f"cannot resume {run_dir}: it contains symbolic links ({shown}); a run folder holds only "
                        "files the run wrote; remove the links or start a new run")
