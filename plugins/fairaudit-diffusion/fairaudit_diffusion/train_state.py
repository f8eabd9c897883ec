"""A resumable fine-tuning state in one safetensors file, written atomically.

The file holds the trainable parameters (``param/<name>``), the AdamW moments and step
counts (``adam/exp_avg/<name>``, ``adam/exp_avg_sq/<name>``, ``adam/step/<name>``), the EMA
weights (``ema/<name>``), the torch generator's state (``rng/torch``), the losses so far
(``log/losses``) and the validation images (``validation/<step>``); the metadata holds the
step, the numpy generator's state and a fingerprint of the configuration, so a state is
only ever resumed by the run that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fairaudit.errors import CheckpointError

if TYPE_CHECKING:
    import torch

FORMAT = "fairaudit-diffusion-train-state/1"


def config_fingerprint(settings: Mapping[str, Any]) -> str:
    """A short SHA-256 of the JSON of ``settings`` (keys sorted; non-JSON values as ``str``)."""
    text = json.dumps(dict(settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class TrainState:
    """Everything needed to continue a fine-tune exactly where it stopped."""

    step: int
    fingerprint: str
    params: dict[str, torch.Tensor]
    adam: dict[str, dict[str, torch.Tensor]]  #: name -> {"exp_avg", "exp_avg_sq", "step"}
    ema: dict[str, torch.Tensor]
    torch_rng: torch.Tensor
    numpy_rng: dict[str, Any]
    losses: list[float]
    samples: int = 0
    validation: dict[int, torch.Tensor] = field(default_factory=dict)


def save_train_state(path: str | os.PathLike[str], state: TrainState) -> Path:
    """Write ``state`` to ``path`` with safetensors, atomically (temp file, then rename)."""
    import torch

    from fairaudit.training import save_checkpoint

    tensors: dict[str, torch.Tensor] = {f"param/{k}": v for k, v in state.params.items()}
    for name, moments in state.adam.items():
        for key, value in moments.items():
            tensors[f"adam/{key}/{name}"] = value if value.dim() else value.reshape(1)
    tensors.update({f"ema/{k}": v for k, v in state.ema.items()})
    tensors["rng/torch"] = state.torch_rng
    tensors["log/losses"] = torch.tensor(state.losses, dtype=torch.float64)
    tensors.update({f"validation/{s}": v for s, v in state.validation.items()})
    metadata = {
        "format": FORMAT,
        "step": str(state.step),
        "samples": str(state.samples),
        "fingerprint": state.fingerprint,
        "numpy_rng": json.dumps(state.numpy_rng),
    }
    return save_checkpoint(path, tensors, metadata)


def read_fingerprint(path: str | os.PathLike[str]) -> str | None:
    """The fingerprint stored in ``path`` (``None`` when the file is absent)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        return None
    try:
        with safe_open(str(p), "pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:
        raise CheckpointError(f"training state {p} is corrupted or not a safetensors file: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a fairaudit-diffusion training state (format {meta.get('format')!r})")
    return meta.get("fingerprint", "")


def load_train_state(path: str | os.PathLike[str]) -> TrainState:
    """Read a state written by :func:`save_train_state`; a bad file raises :class:`CheckpointError`."""
    from safetensors import safe_open

    p = Path(path)
    read_fingerprint(p)  # checks presence and format
    with safe_open(str(p), "pt") as fh:
        meta = fh.metadata() or {}
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    params, ema, validation = {}, {}, {}
    adam: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        group, _, rest = key.partition("/")
        if group == "param":
            params[rest] = value
        elif group == "ema":
            ema[rest] = value
        elif group == "validation":
            validation[int(rest)] = value
        elif group == "adam":
            kind, _, name = rest.partition("/")
            adam.setdefault(name, {})[kind] = value.reshape(()) if kind == "step" else value
    try:
        return TrainState(
            step=int(meta["step"]),
            fingerprint=meta["fingerprint"],
            params=params,
            adam=adam,
            ema=ema,
            torch_rng=tensors["rng/torch"],
            numpy_rng=json.loads(meta["numpy_rng"]),
            losses=[float(v) for v in tensors["log/losses"].tolist()],
            samples=int(meta.get("samples", 0)),
            validation=validation,
        )
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"training state {p} is incomplete: missing or bad {exc}") from exc
