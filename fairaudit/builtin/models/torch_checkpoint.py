"""``torch_checkpoint``: audit a network the user trained (evaluate it, or fine-tune its head or all of it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

import numpy as np
from pydantic import AfterValidator

from fairaudit.base import BaseModel
from fairaudit.builtin.models._architectures import check_arch
from fairaudit.errors import DataError
from fairaudit.lazy_images import is_lazy_images

if TYPE_CHECKING:
    import torch

    from fairaudit.builtin.models._checkpoint_net import Scorer


def _check_factory(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value):
        raise ValueError(f"factory {value!r} must read 'package.module:function' (a function returning the "
                         "torch.nn.Module; imported only when the audit runs)")
    return value


def _check_weights(value: str | None) -> str | None:
    if value is not None and Path(value).suffix not in (".safetensors", ".pt", ".pth", ".bin"):
        raise ValueError(f"weights {value!r}: give a .safetensors file or a .pt/.pth state dict")
    return value


class TorchCheckpoint(BaseModel):
    """A trained image classifier you bring: a named architecture or your own code, with its
    weights from a local file (never downloaded); evaluated as it is, or fine-tuned.

    Audit images (in [0, 1]) are adapted to the network's ``channels`` (grey repeated), resized
    to ``input_size`` and normalised with ``mean``/``std``; the score is the sigmoid of the
    positive class's logit (with a softmax head: its softmax probability).  The probes
    (``attribute_probe``, ``attack_probe``) read the network's own features, the input of its
    final layer, and every probe result says which representation it read.

    Parameters
    ----------
    arch:
        Architecture name: densenet121/169/201 and resnet18/34/50/101 are built in, with
        state dicts identical to torchvision's (torchvision checkpoints load directly); other
        torchvision names (efficientnet_b0, vit_b_16, ...) need an importable torchvision.
        Give ``arch`` or ``factory``.
    factory:
        ``"package.module:function"`` returning your ``torch.nn.Module``; imported when the
        audit runs, never by ``fairaudit validate``.
    factory_kwargs:
        Keyword arguments of the factory function.
    weights:
        A ``.safetensors`` file or a ``.pt``/``.pth`` state dict (relative to the spec's folder),
        read with ``torch.load(weights_only=True)``: a pickled model is refused, never run.
        Required unless ``train`` is ``head`` or ``full``.
    num_classes:
        Outputs of the network's final layer (as in the weights file).
    output_index:
        The output of the positive class (default: 0 for one output, 1 for two).
    activation:
        ``sigmoid`` (one logit per class) or ``softmax``; ``auto``: sigmoid for one output, else softmax.
    channels:
        Input channels the network takes (grey images are repeated, colour ones averaged for 1).
    input_size:
        Resize to this many pixels (one number, or ``[height, width]``); default: as given.
    mean, std:
        Normalisation per channel (one value or one per channel); default ImageNet's
        (``[0.485, 0.456, 0.406]``, ``[0.229, 0.224, 0.225]``; 0.449 and 0.226 for one channel).
    head:
        The final layer's module name (default: the architecture's, e.g. ``classifier`` or
        ``fc``; for a factory, the last ``Linear``).
    train:
        ``none`` evaluates the network as it is; ``head`` fine-tunes the final layer only
        (BatchNorm statistics frozen); ``full`` fine-tunes every layer.  Binary cross-entropy
        on the positive logit, early stopping on ``val_fraction`` of the training split.
    probe_features:
        Probes read the network's features; ``false``: the input pixels pooled to 32×32.
    max_epochs, batch_size, lr, weight_decay, patience, val_fraction:
        Fine-tuning settings (``batch_size`` also sets the evaluation batches).
    device:
        ``auto``, ``cpu`` or ``cuda``.
    random_state:
        Seed of the fine-tuning.
    """

    name = "torch_checkpoint"
    description = "Your trained network (architecture name or factory + local weights); evaluate or fine-tune"
    modalities = frozenset({"images"})

    def __init__(
        self,
        *,
        arch: Annotated[str | None, AfterValidator(check_arch)] = None,
        factory: Annotated[str | None, AfterValidator(_check_factory)] = None,
        factory_kwargs: dict[str, Any] = {},  # noqa: B006 - stored, never mutated
        weights: Annotated[str | None, AfterValidator(_check_weights)] = None,
        num_classes: int = 1,
        output_index: int | None = None,
        activation: Literal["auto", "sigmoid", "softmax"] = "auto",
        channels: int = 3,
        input_size: int | list[int] | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        head: str | None = None,
        train: Literal["none", "head", "full"] = "none",
        probe_features: bool = True,
        max_epochs: int = 5,
        batch_size: int = 32,
        lr: float = 1e-4,
        weight_decay: float = 1e-4,
        patience: int = 2,
        val_fraction: float = 0.15,
        device: str = "auto",
        random_state: int = 0,
    ):
        self.arch = arch
        self.factory = factory
        self.factory_kwargs = factory_kwargs
        self.weights = weights
        self.num_classes = num_classes
        self.output_index = output_index
        self.activation = activation
        self.channels = channels
        self.input_size = input_size
        self.mean = mean
        self.std = std
        self.head = head
        self.train = train
        self.probe_features = probe_features
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.val_fraction = val_fraction
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ configuration
    def resolve(self, base_dir: Path) -> Self:
        if self.weights is not None and not Path(self.weights).is_absolute():
            self.weights = str((Path(base_dir) / self.weights).resolve())
        return self

    def input_files(self) -> list[Path]:
        return [Path(self.weights)] if self.weights is not None else []

    def _settings(self) -> tuple[int, bool, tuple[float, ...], tuple[float, ...], tuple[int, int] | None]:
        """Positive index, softmax or not, mean, std, size; every inconsistency named."""
        from fairaudit.builtin.models._checkpoint_net import IMAGENET_MEAN, IMAGENET_STD

        if (self.arch is None) == (self.factory is None):
            raise DataError("torch_checkpoint: give exactly one of `arch` (an architecture name) or `factory` "
                            "('package.module:function')")
        if self.weights is None and self.train == "none":
            raise DataError("torch_checkpoint: `weights` is required to evaluate a network (train: none); "
                            "only train: head|full may start without them")
        softmax = self.activation == "softmax" or (self.activation == "auto" and self.num_classes > 1)
        index = self.output_index
        if index is None:
            if self.num_classes > 2:
                raise DataError(f"torch_checkpoint: the network has num_classes={self.num_classes} outputs; "
                                "set output_index to the positive class")
            index = self.num_classes - 1
        if not 0 <= index < self.num_classes:
            raise DataError(f"torch_checkpoint: output_index {index} is outside 0..{self.num_classes - 1}")
        default = (IMAGENET_MEAN, IMAGENET_STD) if self.channels == 3 else ((0.449,), (0.226,))
        mean = tuple(self.mean) if self.mean is not None else default[0]
        std = tuple(self.std) if self.std is not None else default[1]
        for label, values in (("mean", mean), ("std", std)):
            if len(values) not in (1, self.channels):
                raise DataError(f"torch_checkpoint: {label} has {len(values)} values; give 1 or channels="
                                f"{self.channels}")
        size = self.input_size
        if isinstance(size, int):
            size = [size, size]
        if size is not None and len(size) != 2:
            raise DataError(f"torch_checkpoint: input_size must be one number or [height, width]; got {size}")
        return index, softmax, mean, std, (tuple(size) if size is not None else None)  # type: ignore[return-value]

    def _build(self) -> Scorer:
        from fairaudit.builtin.models._checkpoint_net import (
            Scorer,
            build_network,
            check_channels,
            find_head,
            load_weights,
        )

        index, softmax, mean, std, size = self._settings()
        net = build_network(self.arch, self.factory, dict(self.factory_kwargs), self.num_classes)
        head = find_head(net, self.arch, self.head)
        check_channels(net, self.channels)
        if self.weights is not None:
            load_weights(net, Path(self.weights), head)
        if self.train == "head" and head is None:
            raise DataError("torch_checkpoint: train: head needs the final layer; name it with `head:`")
        return Scorer(net, head=head, channels=self.channels, size=size, mean=mean, std=std, index=index,
                      softmax=softmax)

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None) -> Self:
        from fairaudit.training import resolve_device, seed_everything

        self.seed_ = self.run_context().training_seed(self.random_state)  # a later repeat: its own seed
        seed_everything(self.seed_)
        if len(X.shape) != 4:
            raise DataError(f"torch_checkpoint expects images (n, C, H, W); got inputs of shape {X.shape}")
        scorer = self._build()
        self.device_ = resolve_device(self.device)
        self.history_: list[dict[str, float]] = []
        if self.train != "none":
            weights = np.ones(len(y), np.float32) if sample_weight is None else np.asarray(sample_weight, np.float32)
            self._fine_tune(scorer.to(self.device_), X, np.asarray(y, np.float32), weights)
        self.module_ = scorer.to("cpu").eval()
        return self

    def _trainable(self, scorer: Scorer) -> list[torch.nn.Parameter]:
        if self.train == "full":
            return list(scorer.net.parameters())
        for p in scorer.net.parameters():
            p.requires_grad_(False)
        head = scorer.net.get_submodule(scorer.head or "")
        for p in head.parameters():
            p.requires_grad_(True)
        return list(head.parameters())

    def _fine_tune(self, scorer: Scorer, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        import torch

        from fairaudit.builtin.models._checkpoint_net import batches
        from fairaudit.training import EarlyStopping, check_finite, progress

        rng = np.random.default_rng(self.seed_)
        order = rng.permutation(len(y))
        n_val = round(self.val_fraction * len(y)) if len(y) >= 20 else 0
        val, train = np.sort(order[:n_val]), order[n_val:]
        optimiser = torch.optim.AdamW(self._trainable(scorer), lr=self.lr, weight_decay=self.weight_decay)
        stopper = EarlyStopping(patience=self.patience)
        device = self.device_
        for epoch in progress(range(self.max_epochs), desc=f"{self.name} fine-tuning",
                              enabled=self.run_context().progress):
            scorer.train(self.train == "full")  # head: BatchNorm statistics and dropout stay as trained
            total = 0.0
            for pos, xb in batches(X, self.batch_size, rng.permutation(train)):
                yb, wb = torch.as_tensor(y[pos], device=device), torch.as_tensor(w[pos], device=device)
                loss_each = torch.nn.functional.binary_cross_entropy_with_logits(scorer(xb.to(device)), yb,
                                                                                 reduction="none")
                loss = (loss_each * wb).sum() / wb.sum()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.item()) * len(pos)
            record = {"epoch": float(epoch), "train_loss": total / max(len(train), 1)}
            check_finite(record["train_loss"], f"{self.name} epoch {epoch}")
            self.history_.append(record)
            if n_val:
                scorer.eval()
                logits = self._logits(scorer, X, val, device)
                record["val_loss"] = float(torch.nn.functional.binary_cross_entropy_with_logits(
                    torch.as_tensor(logits), torch.as_tensor(y[val])).item())
                if stopper.step(record["val_loss"], scorer):
                    break
        if n_val:
            stopper.restore(scorer)

    def _logits(self, scorer: Scorer, X: Any, rows: np.ndarray | None, device: str) -> np.ndarray:
        import torch

        from fairaudit.builtin.models._checkpoint_net import batches

        out = []
        with torch.no_grad():
            for _, xb in batches(X, self.batch_size, rows):
                out.append(scorer(xb.to(device)).cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if not is_lazy_images(X):
            X = np.asarray(X, dtype=np.float32)
        scorer = self.module_.to(self.device_)
        try:
            return 1.0 / (1.0 + np.exp(-self._logits(scorer, X, None, self.device_)))
        finally:
            self.module_ = scorer.to("cpu")

    def representation(self, X: np.ndarray) -> tuple[np.ndarray, str] | None:
        """The input of the network's final layer for ``X`` (``None`` with ``probe_features: false``
        or when the network has no identifiable final layer)."""
        import torch

        from fairaudit.builtin.models._checkpoint_net import batches

        if not self.probe_features or self.module_.head is None:
            return None
        scorer = self.module_.to(self.device_)
        out = []
        try:
            with torch.no_grad():
                for _, xb in batches(X, self.batch_size):
                    out.append(scorer.features(xb.to(self.device_)).cpu().numpy())
        finally:
            self.module_ = scorer.to("cpu")
        feats = np.concatenate(out).astype(np.float32)
        return feats, f"model features ({feats.shape[1]}-d, the input of layer {self.module_.head!r})"

    def state_dict(self) -> dict[str, Any]:
        return self.module_.net.state_dict()

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{"arch": "resnet18", "input_size": 32, "train": "full", "max_epochs": 3,
                 "lr": 1e-3, "device": "cpu"}]
