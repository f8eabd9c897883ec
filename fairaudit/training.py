"""Shared helpers for torch training loops: device, seeds, loaders, DDP, checkpoints, progress.

Loops written with these helpers run unchanged on CPU, one GPU, or under
``torchrun`` / ``accelerate launch`` (DistributedDataParallel with distributed samplers).
torch is imported lazily so that importing fairaudit stays fast.

A public module for plugin authors (the names in ``__all__``; docs/architecture.md).
"""

from __future__ import annotations

import math
import os
import random
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from fairaudit.errors import CheckpointError, DataError, DeviceError, TrainingError

if TYPE_CHECKING:
    import pandas as pd
    import torch

T = TypeVar("T")

__all__ = [
    "EarlyStopping",
    "MixedPrecision",
    "all_reduce_mean",
    "barrier",
    "broadcast_object",
    "check_finite",
    "init_distributed_from_env",
    "is_distributed",
    "is_main_process",
    "load_checkpoint",
    "make_dataset_loader",
    "make_loader",
    "progress",
    "rank",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
    "set_epoch",
    "synthetic_rows",
    "torch_generator",
    "unwrap",
    "world_size",
    "wrap_ddp",
]


def resolve_device(requested: str = "auto", *, on_missing_cuda: str = "warn") -> str:
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without CUDA warns and falls
    back to CPU, or raises when ``on_missing_cuda="fail"``."""
    import torch

    requested = (requested or "auto").lower()
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        if on_missing_cuda == "fail":
            raise DeviceError(f"device {requested!r} was requested but CUDA is not available "
                              "(spec: on_missing_cuda: fail; set it to 'warn' to fall back to the CPU)")
        warnings.warn(f"device {requested!r} requested but CUDA is not available; using CPU",
                      RuntimeWarning, stacklevel=2)
        return "cpu"
    return requested


def seed_everything(seed: int, *, with_torch: bool = True) -> None:
    """Seed python, numpy and torch (CPU and CUDA); ``with_torch=False`` leaves torch alone (and
    unimported) for work that never uses it, such as an audit of given scores."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    if with_torch:
        import torch

        torch.manual_seed(seed)


def torch_generator(seed: int) -> torch.Generator:
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    return g


# ---------------------------------------------------------------- distributed
def is_distributed() -> bool:
    """Whether a process group is initialised (never, while torch.distributed is not imported:
    so asking does not import torch)."""
    dist = sys.modules.get("torch.distributed")
    return dist is not None and dist.is_available() and dist.is_initialized()


def rank() -> int:
    if not is_distributed():
        return 0
    import torch.distributed as dist

    return dist.get_rank()


def world_size() -> int:
    if not is_distributed():
        return 1
    import torch.distributed as dist

    return dist.get_world_size()


def is_main_process() -> bool:
    return rank() == 0


def init_distributed_from_env(backend: str | None = None) -> bool:
    """Initialise torch.distributed when launched by torchrun/accelerate (``WORLD_SIZE`` > 1).

    Backend: ``backend``, else ``FAIRAUDIT_DIST_BACKEND``, else NCCL with CUDA and gloo without.
    Local ranks beyond the number of GPUs share them (``LOCAL_RANK % device_count``); NCCL
    refuses two ranks on one GPU, gloo accepts them.  torch is imported only when distributed.
    """
    if is_distributed() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return is_distributed()
    import torch
    import torch.distributed as dist

    backend = backend or os.environ.get("FAIRAUDIT_DIST_BACKEND") or ("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    dist.init_process_group(backend=backend)
    return True


def wrap_ddp(module: torch.nn.Module, device: str) -> torch.nn.Module:
    """Wrap in DistributedDataParallel when running distributed; otherwise return as is."""
    if not is_distributed():
        return module
    from torch.nn.parallel import DistributedDataParallel

    if device.startswith("cuda"):
        import torch

        return DistributedDataParallel(module, device_ids=[torch.cuda.current_device()])
    return DistributedDataParallel(module)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return getattr(module, "module", module)


def make_loader(
    *arrays: np.ndarray | torch.Tensor,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
    num_workers: int = 0,
) -> torch.utils.data.DataLoader:
    """A DataLoader over in-memory arrays; uses a DistributedSampler when distributed."""
    import torch
    from torch.utils.data import TensorDataset

    tensors = [a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a)) for a in arrays]
    return make_dataset_loader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle, seed=seed,
                               drop_last=drop_last, num_workers=num_workers)


def make_dataset_loader(
    dataset: torch.utils.data.Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
    num_workers: int = 0,
) -> torch.utils.data.DataLoader:
    """A DataLoader over any map-style dataset (e.g. images decoded on demand by worker
    processes); a DistributedSampler when distributed, else a seeded shuffle."""
    from torch.utils.data import DataLoader, DistributedSampler

    extra: dict[str, Any] = {"num_workers": num_workers, "persistent_workers": num_workers > 0}
    if is_distributed():
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **extra)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      generator=torch_generator(seed) if shuffle else None, **extra)


def set_epoch(loader: Any, epoch: int) -> None:
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def all_reduce_mean(value: float, device: str = "cpu") -> float:
    """Average a scalar across ranks (identity when not distributed)."""
    if not is_distributed():
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / world_size()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (identity when not distributed)."""
    if not is_distributed():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_distributed():
        import torch.distributed as dist

        dist.barrier()


class MixedPrecision:
    """Autocast + loss scaling for one training loop; a no-op unless ``enabled`` on CUDA.

    bfloat16 where the GPU supports it (no scaler needed), float16 with a gradient scaler
    otherwise.  Usage::

        amp = MixedPrecision(device, enabled=ctx.mixed_precision)
        with amp.autocast():
            loss = ...
        amp.step(loss, optimiser)
    """

    def __init__(self, device: str, enabled: bool = False):
        import torch

        self.enabled = bool(enabled) and device.startswith("cuda") and torch.cuda.is_available()
        self.device_type = "cuda" if device.startswith("cuda") else "cpu"
        bf16 = self.enabled and torch.cuda.is_bf16_supported()
        self.dtype = torch.bfloat16 if bf16 else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.enabled and not bf16 else None

    def autocast(self) -> Any:
        import torch

        return torch.autocast(device_type=self.device_type, dtype=self.dtype, enabled=self.enabled)

    def step(self, loss: torch.Tensor, optimiser: torch.optim.Optimizer) -> None:
        """zero_grad, backward and step (scaled when float16)."""
        optimiser.zero_grad()
        if self.scaler is None:
            loss.backward()
            optimiser.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimiser)
        self.scaler.update()


# ---------------------------------------------------------------- loop helpers
def check_finite(loss: float, where: str) -> None:
    """Raise :class:`TrainingError` on a NaN/inf loss (the runner marks the arm failed)."""
    if not math.isfinite(loss):
        raise TrainingError(f"{where}: loss became {loss}; training diverged")


class EarlyStopping:
    """Stop when the monitored value has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min"):
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best: float | None = None
        self.bad_epochs = 0
        self.best_state: dict[str, Any] | None = None

    def step(self, value: float, module: torch.nn.Module | None = None) -> bool:
        """Record ``value``; returns True when training should stop."""
        improved = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        )
        if improved:
            self.best, self.bad_epochs = value, 0
            if module is not None:
                self.best_state = {k: v.detach().clone() for k, v in unwrap(module).state_dict().items()}
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, module: torch.nn.Module) -> None:
        if self.best_state is not None:
            unwrap(module).load_state_dict(self.best_state)


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, enabled: bool = True) -> Iterator[T]:
    """A tqdm progress bar on the main process (silent elsewhere or when disabled).

    Plugins pass ``enabled=self.run_context().progress`` (or their own ``progress`` parameter,
    defaulting to it): the run's context is the one switch (``fairaudit run -q`` turns it off)."""
    from tqdm.auto import tqdm

    disable = (not enabled) or (not is_main_process())
    if not disable and not _is_terminal(sys.stderr):  # a log file: plain lines, never "\r" redraws
        yield from plain_progress(iterable, desc=desc, total=total, stream=sys.stderr)
        return
    yield from tqdm(iterable, desc=desc, total=total, disable=disable, leave=False, dynamic_ncols=True)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def plain_progress(iterable: Iterable[T], *, desc: str, total: int | None, stream: Any,
                   steps: int = 10) -> Iterator[T]:
    """``iterable``, with at most ``steps`` + 1 plain lines (``desc: 3/30``, then ``desc: done, 30
    in 1.2 s``) written to ``stream``: progress a redirected log can hold."""
    import time

    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    every = max(1, -(-total // steps)) if total else 0
    start = time.perf_counter()
    count = 0
    for item in iterable:
        yield item
        count += 1
        if every and count % every == 0 and count < (total or 0):
            print(f"{desc}: {count}/{total}", file=stream, flush=True)
    print(f"{desc}: done, {count} in {time.perf_counter() - start:.1f} s", file=stream, flush=True)


# ---------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | os.PathLike[str], state: dict[str, torch.Tensor],
                    metadata: dict[str, str] | None = None) -> Path:
    """Save tensors with safetensors, atomically (temp file, then rename)."""
    from safetensors.torch import save

    from fairaudit.atomic import write_bytes

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    return write_bytes(path, save(tensors, metadata=metadata))


def load_checkpoint(path: str | os.PathLike[str], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors checkpoint; a missing or corrupted file raises :class:`CheckpointError`."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        return load_file(str(p), device=device)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {p} is corrupted or not a safetensors file: {exc}") from exc


def synthetic_rows(y: np.ndarray, sensitive: pd.DataFrame, n: int, sampling: str = "as_data", *,
                   attributes: list[str] | None = None, seed: int | None = 0) -> np.ndarray:
    """Training rows whose (label, attributes) condition the ``n`` synthetic images.

    ``as_data``: ``n`` rows drawn at random (with replacement only when ``n`` exceeds the rows),
    so the synthetic set keeps the data's base rates and group sizes.  ``balanced``: the rows
    are split into (label, group) cells, ``group`` being the combination of ``attributes``
    (default: every column of ``sensitive``; missing values form their own group), and every
    non-empty cell gets ``n // cells`` rows (the first ``n % cells`` cells one more), drawn
    without replacement while the cell has enough rows.  The other columns of a drawn row
    come with it, so every condition is one that occurs in the data."""
    import pandas as pd

    y = np.asarray(y).reshape(-1)
    if len(y) != len(sensitive):
        raise DataError(f"synthetic_rows: {len(y)} labels but {len(sensitive)} rows of sensitive features")
    if n < 1 or len(y) == 0:
        raise DataError(f"synthetic_rows: need n >= 1 and training rows (n={n}, rows={len(y)})")
    rng = np.random.default_rng(seed)
    if sampling == "as_data":
        return rng.choice(len(y), size=n, replace=n > len(y))
    if sampling != "balanced":
        raise DataError(f"generator sampling must be 'as_data' or 'balanced', got {sampling!r}")
    cols = list(sensitive.columns) if attributes is None else list(attributes)
    missing = [c for c in cols if c not in sensitive.columns]
    if missing:
        raise DataError(f"synthetic_rows: attribute(s) {missing} not in the sensitive features {list(sensitive)}")
    keys = pd.DataFrame({"__y": y, **{c: sensitive[c].astype("object").fillna("<missing>").astype(str).to_numpy()
                                      for c in cols}})
    cells = [np.asarray(rows) for _, rows in sorted(keys.groupby(list(keys.columns), sort=True).indices.items())]
    per, extra = divmod(n, len(cells))
    picked = [rng.choice(rows, size=per + (k < extra), replace=per + (k < extra) > len(rows))
              for k, rows in enumerate(cells)]
    return rng.permutation(np.concatenate(picked))
