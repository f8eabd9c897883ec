"""The run folder: ``reports/<spec-name>/<timestamp>/`` with atomic writes and a log file."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fairaudit import atomic
from fairaudit.data import AuditDataset

LOG = logging.getLogger("fairaudit")


def new_run_dir(output_dir: Path, spec_name: str) -> Path:
    """A fresh, unique run folder (created with the user's umask)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(output_dir) / spec_name
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
    """SHA-256 (first 16 hex digits) of the inputs, labels and attributes."""
    h = hashlib.sha256()
    from fairaudit.outofcore import update_hash

    update_hash(h, dataset.inputs)  # chunk by chunk for memory-mapped inputs; same digest
    h.update(np.ascontiguousarray(dataset.y).tobytes())
    h.update(dataset.sensitive.astype(str).to_csv(index=False).encode())
    return h.hexdigest()[:16]


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
    import json

    path = run_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        manifest.update(fields)
        write_manifest(run_dir, manifest)
    except Exception as exc:  # the original error matters more than the bookkeeping
        LOG.warning("could not update %s: %s", path, exc)
