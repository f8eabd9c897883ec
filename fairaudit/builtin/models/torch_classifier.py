"""A small torch training loop shared by the MLP and CNN downstream models."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from fairaudit.base import BaseModel
from fairaudit.lazy_images import LazyImages, is_lazy_images
from fairaudit.training import (
    EarlyStopping,
    MixedPrecision,
    all_reduce_mean,
    check_finite,
    make_dataset_loader,
    make_loader,
    progress,
    resolve_device,
    seed_everything,
    set_epoch,
    unwrap,
    wrap_ddp,
)

if TYPE_CHECKING:
    import torch


class _NormalisedImages:
    """A map-style dataset decoding ``images`` on demand (picklable for DataLoader workers)."""

    def __init__(self, images: LazyImages, y: np.ndarray, w: np.ndarray, mean: float, std: float):
        self.images, self.y, self.w, self.mean, self.std = images, y, w, mean, std

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.float32, np.float32]:
        return (self.images[i] - self.mean) / self.std, self.y[i], self.w[i]


class TorchBinaryClassifier(BaseModel):
    """Binary classifier trained with BCE, early stopping on a validation split, any device."""

    max_epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int
    val_fraction: float
    device: str
    random_state: int

    @abc.abstractmethod
    def build_module(self, input_shape: tuple[int, ...]) -> torch.nn.Module:
        """The network mapping a batch of inputs to one logit per sample."""

    def fit(self, X: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None) -> Self:
        import torch

        seed = self.run_context().training_seed(self.random_state)  # a later repeat: its own seed
        seed_everything(seed)
        device = resolve_device(self.device)
        lazy = is_lazy_images(X)
        if not lazy:
            X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32)
        weights = np.ones(len(y), np.float32) if sample_weight is None else np.asarray(sample_weight, np.float32)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        n_val = round(self.val_fraction * len(y)) if len(y) >= 20 else 0
        val, train = order[:n_val], order[n_val:]
        if lazy:  # images decoded on demand: statistics from a sample, batches decoded by workers
            sample = X.read(np.sort(train[:2048]))
            self.mean_, self.std_ = float(sample.mean()), float(sample.std() + 1e-6)
            loader = make_dataset_loader(
                _NormalisedImages(X.take(train), y[train], weights[train], self.mean_, self.std_),
                batch_size=self.batch_size, shuffle=True, seed=seed,
                num_workers=getattr(self, "num_workers", 0))
        else:
            self.mean_ = float(X[train].mean())
            self.std_ = float(X[train].std() + 1e-6)
            loader = make_loader((X[train] - self.mean_) / self.std_, y[train], weights[train],
                                 batch_size=self.batch_size, shuffle=True, seed=seed)
        module = self.build_module(tuple(X.shape[1:])).to(device)
        model = wrap_ddp(module, device)
        optimiser = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        X_val = (X.take(val) if lazy else X[val]) if n_val else None
        stopper = EarlyStopping(patience=self.patience)
        self.history_: list[dict[str, float]] = []
        ctx = self.run_context()
        amp = MixedPrecision(device, enabled=ctx.mixed_precision)
        for epoch in progress(range(self.max_epochs), desc=f"{self.name} training",
                              enabled=ctx.progress):
            set_epoch(loader, epoch)
            model.train()
            total, count = 0.0, 0
            for xb, yb, wb in loader:
                xb, yb, wb = xb.to(device), yb.to(device), wb.to(device)
                with amp.autocast():
                    logits = model(xb).squeeze(-1).float()
                loss_each = torch.nn.functional.binary_cross_entropy_with_logits(logits, yb, reduction="none")
                loss = (loss_each * wb).sum() / wb.sum()
                amp.step(loss, optimiser)
                total += float(loss.item()) * len(xb)
                count += len(xb)
            train_loss = all_reduce_mean(total / max(count, 1), device)
            check_finite(train_loss, f"{self.name} epoch {epoch}")
            record = {"epoch": float(epoch), "train_loss": train_loss}
            if n_val:
                val_loss = self._loss(unwrap(model), X_val, y[val], device)
                record["val_loss"] = val_loss
                if stopper.step(val_loss, model):
                    self.history_.append(record)
                    break
            self.history_.append(record)
        if n_val:
            stopper.restore(model)
        self.module_ = unwrap(model).to("cpu").eval()
        return self

    def _loss(self, module: torch.nn.Module, X: np.ndarray, y: np.ndarray, device: str) -> float:
        import torch

        module.eval()
        with torch.no_grad():
            logits = self._logits(module, X, device)
            return float(torch.nn.functional.binary_cross_entropy_with_logits(
                torch.as_tensor(logits), torch.as_tensor(y)).item())

    def _logits(self, module: torch.nn.Module, X: np.ndarray, device: str) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(X), 1024):  # raw inputs, standardised chunk by chunk
                chunk = (np.asarray(X[start:start + 1024], np.float32) - self.mean_) / self.std_
                out.append(module(torch.as_tensor(chunk, device=device)).squeeze(-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if not is_lazy_images(X):
            X = np.asarray(X, dtype=np.float32)
        logits = self._logits(self.module_, X, "cpu")
        return 1.0 / (1.0 + np.exp(-logits))

    def state_dict(self) -> dict[str, Any]:
        return self.module_.state_dict()
