"""Turning an edit request into per-image source and target captions.

Two forms are accepted: ``{"source_prompt": ..., "target_prompt": ...}`` (a string or one per
image) and ``{"factor": "device", "to": 0}`` with optional ``"from"`` (value or one per
image) and ``"metadata"`` (per-image columns for full captions).  A factor's current value
that is neither given nor in the metadata is asked of ``infer`` (the generator's zero-shot
diffusion classifier).  Pure python and pandas: no torch here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairaudit import DataError
from fairaudit_diffusion.captions import (
    CaptionBuilder,
    canonical_field,
    flipped,
    metadata_frame,
    value_key,
)

#: ``infer(metadata, factor, candidate_values) -> one value per image``.
InferFn = Callable[[pd.DataFrame, str, list[str]], list[str]]


@dataclass
class EditPrompts:
    """Source and target caption of every image, and a JSON-safe summary of the edit."""

    sources: list[str]
    targets: list[str]
    info: dict[str, Any] = field(default_factory=dict)


def per_row(value: Any, n: int, what: str) -> list[Any]:
    """A scalar repeated ``n`` times, or a sequence checked to have ``n`` items."""
    if isinstance(value, str) or np.ndim(value) == 0:
        return [value] * n
    values = list(np.asarray(value, dtype=object).ravel())
    if len(values) != n:
        raise ValueError(f"edit {what!r} has {len(values)} values for {n} images")
    return values


def _counts(keys: Sequence[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in keys:
        out[str(k)] = out.get(str(k), 0) + 1
    return out


def edit_metadata(metadata: Any, n: int, fields: Sequence[str]) -> pd.DataFrame:
    """The edit's per-image metadata restricted to caption ``fields`` (empty frame if none)."""
    if metadata is None:
        return pd.DataFrame(index=pd.RangeIndex(n))
    frame = metadata if isinstance(metadata, pd.DataFrame) else pd.DataFrame(dict(metadata))
    if len(frame) != n:
        raise ValueError(f"edit metadata has {len(frame)} rows for {n} images")
    meta = metadata_frame(None, frame)
    return meta[[c for c in meta.columns if c in fields]]


def resolve_edit(
    edit: Mapping[str, Any],
    n: int,
    captioner: CaptionBuilder,
    known_values: Mapping[str, list[str]],
    infer: InferFn,
) -> EditPrompts:
    """Source and target captions of ``n`` images for ``edit``.

    Parameters
    ----------
    edit:
        The request (see the module docstring).
    n:
        Number of images.
    captioner:
        The captions the model was fine-tuned on.
    known_values:
        Training values of each caption field (a binary field is flipped without ``"to"``).
    infer:
        Called for the factor's current values when neither ``"from"`` nor metadata has them.
    """
    if "source_prompt" in edit or "target_prompt" in edit:
        if "source_prompt" not in edit or "target_prompt" not in edit:
            raise ValueError("a prompt edit needs both 'source_prompt' and 'target_prompt'")
        return EditPrompts(
            [str(p) for p in per_row(edit["source_prompt"], n, "source_prompt")],
            [str(p) for p in per_row(edit["target_prompt"], n, "target_prompt")],
            {"kind": "prompt"},
        )
    if "factor" not in edit:
        raise ValueError(
            "edit needs 'factor' (e.g. {'factor': 'device', 'to': 0}) or "
            "'source_prompt' and 'target_prompt'"
        )
    factor = canonical_field(str(edit["factor"]))
    if factor not in captioner.fields:
        raise DataError(
            f"cannot edit {edit['factor']!r}: the captions the model was fine-tuned on "
            f"describe {list(captioner.fields)}"
        )
    meta = edit_metadata(edit.get("metadata"), n, captioner.fields)
    known = list(known_values.get(factor, []))
    if "from" in edit:
        source_keys, how = [value_key(v) for v in per_row(edit["from"], n, "from")], "given"
    elif factor in meta.columns and meta[factor].notna().all():
        source_keys, how = [value_key(v) for v in meta[factor].tolist()], "metadata"
    else:
        if len(known) < 2:
            raise DataError(f"cannot infer {factor!r}: the training data had values {known}")
        source_keys, how = list(infer(meta, factor, known)), "inferred"
    if "to" in edit:
        target_keys = [value_key(v) for v in per_row(edit["to"], n, "to")]
    else:
        target_keys = [flipped(str(k), known, factor) for k in source_keys]
    rows = meta.to_dict(orient="records")
    sources = [captioner.caption({**r, factor: s}) for r, s in zip(rows, source_keys, strict=True)]
    targets = [captioner.caption({**r, factor: t}) for r, t in zip(rows, target_keys, strict=True)]
    info = {
        "kind": "factor",
        "factor": factor,
        "source": how,
        "from": _counts(source_keys),
        "to": _counts(target_keys),
    }
    return EditPrompts(sources, targets, info)
