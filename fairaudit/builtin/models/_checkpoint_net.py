"""The pieces of ``torch_checkpoint`` that need torch: build the user's network, load its weights,
wrap it so that a batch of audit images gives one positive-class logit (and, on request, the
input of its final layer: the model's own features).  Imported only when a model is fitted."""

from __future__ import annotations

import importlib
import pickle
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fairaudit.builtin.models._architectures import build_architecture, head_name, rename_legacy_keys
from fairaudit.errors import CheckpointError, DataError, PluginError

#: ImageNet's per-channel mean and std (torchvision's pretrained weights expect them).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def build_network(arch: str | None, factory: str | None, factory_kwargs: dict[str, Any],
                  num_classes: int) -> nn.Module:
    """``arch`` with ``num_classes`` outputs, or what ``factory`` (``"package.module:function"``) returns."""
    if factory is None:
        assert arch is not None
        return build_architecture(arch, num_classes)
    module_name, _, attr = factory.partition(":")
    try:
        build = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"factory {factory!r}: cannot import it ({type(exc).__name__}: {exc}); the module must "
                          "be importable (installed, or on PYTHONPATH)") from exc
    net = build(**factory_kwargs)
    if not isinstance(net, nn.Module):
        raise PluginError(f"factory {factory!r} returned {type(net).__name__}, not a torch.nn.Module")
    return net


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file or a ``.pt`` state dict (``weights_only=True``:
    nothing in the file is executed); a training checkpoint's ``state_dict``/``model_state_dict``
    entry is used, and DistributedDataParallel's ``module.`` prefix dropped."""
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:
            raise CheckpointError(f"weights file {path} is not a readable safetensors file: {exc}") from exc
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the refusal below says it all
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as exc:
        raise CheckpointError(
            f"weights file {path} is not a plain state dict: torch.load(weights_only=True) refused it "
            f"({_why_refused(exc)}). "
            "A pickled model or custom objects are never unpickled; save `model.state_dict()` with torch.save, "
            "or use safetensors") from exc
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"weights file {path} holds a {type(obj).__name__}, not a state dict (a mapping of "
                              "parameter names to tensors); save `model.state_dict()`")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _why_refused(exc: BaseException) -> str:
    """The useful part of torch's refusal (e.g. "Unsupported global: GLOBAL builtins.open")."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
        text = text.split(" Please use", 1)[0]
    text = " ".join(text.split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(exc).__name__)


def load_weights(net: nn.Module, path: Path, head: str | None) -> None:
    """Load ``path`` into ``net``; every missing, unexpected or mis-shaped tensor is named."""
    state = rename_legacy_keys(read_state_dict(path))
    own = net.state_dict()
    shapes = [f"{k}: file {list(v.shape)}, network {list(own[k].shape)}"
              for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if shapes or missing or unexpected:
        lines = [f"weights file {path} does not fit the network:"]
        if shapes:
            lines.append(f"  shapes differ ({len(shapes)}): " + "; ".join(shapes[:4]))
            if head and any(s.startswith(f"{head}.weight") for s in shapes):
                lines.append(f"  the final layer {head!r} differs: set num_classes to the file's "
                             f"{int(state[f'{head}.weight'].shape[0])} (and output_index to the positive class)")
        if missing:
            lines.append(f"  missing in the file ({len(missing)}): {', '.join(missing[:5])}")
        if unexpected:
            lines.append(f"  not in the network ({len(unexpected)}): {', '.join(unexpected[:5])}")
        raise CheckpointError("\n".join(lines))
    net.load_state_dict(state)


def find_head(net: nn.Module, arch: str | None, head: str | None) -> str | None:
    """The name of the final layer: ``head`` if given, the architecture's, else the last Linear."""
    names = dict(net.named_modules())
    if head is not None:
        if head not in names:
            raise PluginError(f"head {head!r} is not a module of the network; modules end with: "
                              f"{', '.join(list(names)[-5:])}")
        return head
    if arch is not None and head_name(arch) in names:
        return head_name(arch)
    linear = [n for n, m in names.items() if isinstance(m, nn.Linear)]
    return linear[-1] if linear else None


def check_channels(net: nn.Module, channels: int) -> None:
    """The network's first convolution must take ``channels`` input channels."""
    first = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and first.in_channels != channels:
        raise DataError(f"the network's first convolution takes {first.in_channels} channel(s); set channels: "
                        f"{first.in_channels} (grey images are repeated to fill them)")


class Scorer(nn.Module):
    """Images in [0, 1] -> the positive class's logit: channels adapted, resized, normalised."""

    def __init__(self, net: nn.Module, *, head: str | None, channels: int, size: tuple[int, int] | None,
                 mean: Sequence[float], std: Sequence[float], index: int, softmax: bool):
        super().__init__()
        self.net, self.head, self.channels, self.size = net, head, channels, size
        self.index, self.softmax = index, softmax
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c != self.channels:
            if c == 1:
                x = x.expand(-1, self.channels, -1, -1)
            elif self.channels == 1:
                x = x.mean(1, keepdim=True)
            else:
                raise DataError(f"the network takes {self.channels} channel(s); the images have {c}")
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(self.prepare(x))
        if isinstance(out, tuple | list):  # e.g. (logits, aux)
            out = out[0]
        out = out.reshape(len(out), -1).float()
        if out.shape[1] <= self.index:
            raise DataError(f"the network gives {out.shape[1]} output(s); output_index {self.index} is out of range")
        if not self.softmax:
            return out[:, self.index]
        others = torch.cat([out[:, : self.index], out[:, self.index + 1:]], 1)
        return out[:, self.index] - torch.logsumexp(others, 1)  # logit of the softmax probability

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The input of the final layer (the network's penultimate representation), flattened."""
        assert self.head is not None
        seen: list[torch.Tensor] = []
        hook = self.net.get_submodule(self.head).register_forward_pre_hook(
            lambda _m, args: seen.append(args[0].detach()))
        try:
            self.net(self.prepare(x))
        finally:
            hook.remove()
        return seen[-1].reshape(len(x), -1).float()


def batches(X: Any, batch_size: int, rows: np.ndarray | None = None) -> Any:
    """``(positions, float32 tensor)`` blocks of ``X`` (an array or lazy images), in order."""
    rows = np.arange(len(X)) if rows is None else rows
    for start in range(0, len(rows), batch_size):
        pos = rows[start:start + batch_size]
        yield pos, torch.as_tensor(np.ascontiguousarray(X[pos], dtype=np.float32))
