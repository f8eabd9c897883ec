"""The resume store: the files under ``arms/`` that let ``fairaudit run --resume`` keep finished arms.

Per arm plan, ``arms/<index>_<name>.json`` holds the arm's results and its fingerprint
(:mod:`fairaudit.audit.fingerprint`), and ``arms/<index>_<name>.<arm>.scores.npy`` each of its
arms' test scores (for the paired comparison with the baseline); an arm trained several times
(``repeats: N``) has the same files for each further repeat ``k``, named ``<index>_<name>.r<k>...``,
each kept or recomputed on its own.  Scores are written first: an
arm file on disk means the arm is complete.  On resume an arm file is kept only when it is
readable and its fingerprint equals the arm's now; otherwise the arm is recomputed and the
reason is returned for the console and the report.

File names derive from the plan's index and name, with anything but ``A-Z a-z 0-9 . _ -``
replaced (and a leading dot) and long names cut, so no label can make a name the file system
refuses; a name that had to be changed gets a short hash of the original, so two labels never
share a file.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic

from fairaudit import atomic
from fairaudit.audit.arm import ArmPlan
from fairaudit.audit.fingerprint import describe, differences
from fairaudit.results import ArmResult

#: Version of the arm-file layout (files of another layout are recomputed).
ARM_FILE_FORMAT = 2
#: Longest file-name part derived from a name (the file system allows 255 bytes in all).
MAX_PART = 60
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(name: str) -> str:
    """A file-name part for ``name``: unchanged when already safe and short, else cleaned, cut to
    :data:`MAX_PART` characters and suffixed with a hash of ``name``."""
    cleaned = _UNSAFE.sub("_", name)
    cleaned = "_" + cleaned[1:] if cleaned.startswith(".") else cleaned  # never a hidden file
    if cleaned == name and len(name) <= MAX_PART:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{cleaned[: MAX_PART - 11]}-{digest}"


@dataclass
class Lookup:
    """What the store holds for an arm plan: nothing, a kept arm, or a file it will not use."""

    status: Literal["absent", "kept", "stale"]
    results: list[ArmResult] = field(default_factory=list)
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    reason: str = ""


class ResumeStore:
    """Arm files and score files of one run folder."""

    def __init__(self, run_dir: Path, n_test: int):
        self.folder = Path(run_dir) / "arms"
        self.n_test = n_test

    def arm_file(self, plan: ArmPlan, repeat: int = 0) -> Path:
        return self.folder / f"{_stem(plan, repeat)}.json"

    def scores_file(self, plan: ArmPlan, arm_name: str, repeat: int = 0) -> Path:
        return self.folder / f"{_stem(plan, repeat)}.{safe_name(arm_name)}.scores.npy"

    def load(self, plan: ArmPlan, fingerprint: dict[str, Any], repeat: int = 0) -> Lookup:
        """The plan's stored arm (its repeat ``repeat``) when its file is readable and its
        fingerprint matches."""
        path = self.arm_file(plan, repeat)
        if not path.is_file():
            return Lookup("absent")
        rel = f"arms/{path.name}"
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return Lookup("stale", reason=f"{rel} is unreadable (truncated?): {exc}")
        if not isinstance(stored, dict) or stored.get("format") != ARM_FILE_FORMAT:
            return Lookup("stale", reason=f"{rel} was written by another version of fairaudit (no fingerprint)")
        diffs = differences(stored.get("fingerprint"), fingerprint)
        if diffs:
            return Lookup("stale", reason=f"{rel} was computed with other settings ({describe(diffs)})")
        try:
            results = [ArmResult.model_validate(a) for a in stored["arms"]]
        except (KeyError, TypeError, pydantic.ValidationError) as exc:
            return Lookup("stale", reason=f"{rel} is incomplete: {type(exc).__name__}: {exc}")
        scores = {r.name: s for r in results
                  if (s := self._load_scores(self.scores_file(plan, r.name, repeat))) is not None}
        return Lookup("kept", results, scores)

    def save(self, plan: ArmPlan, fingerprint: dict[str, Any], results: list[ArmResult],
             scores: dict[str, np.ndarray], repeat: int = 0) -> None:
        """Write the scores, then the arm file (atomically: an arm file means a complete arm)."""
        for r in results:
            if r.name in scores:
                with atomic.atomic_open(self.scores_file(plan, r.name, repeat), "wb") as fh:
                    np.save(fh, np.asarray(scores[r.name], dtype=np.float64), allow_pickle=False)
        atomic.write_json(self.arm_file(plan, repeat), {
            "format": ARM_FILE_FORMAT, "fingerprint": fingerprint,
            "arms": [r.model_dump(mode="json") for r in results]})

    def _load_scores(self, path: Path) -> np.ndarray | None:
        """Scores saved by :meth:`save`, or ``None`` when absent, unreadable or not one score per
        test row (the paired comparison then says so; the arm is kept)."""
        try:
            scores = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return scores if scores.ndim == 1 and len(scores) == self.n_test else None


def _stem(plan: ArmPlan, repeat: int = 0) -> str:
    """``<index>_<name>`` (repeat 0: the file of a run without repeats), ``<index>_<name>.r<k>`` after."""
    return f"{plan.index:02d}_{safe_name(plan.name)}" + (f".r{repeat}" if repeat else "")
