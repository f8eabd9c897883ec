"""Training loop of the denoising beta-VAE (CPU, one GPU, or DDP under torchrun)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from fairaudit.training import (
    EarlyStopping,
    MixedPrecision,
    all_reduce_mean,
    check_finite,
    make_loader,
    progress,
    set_epoch,
    torch_generator,
    unwrap,
    wrap_ddp,
)
from fairaudit_alphashift.augment import random_erase
from fairaudit_alphashift.losses import ssim, vae_loss


@dataclass
class TrainConfig:
    """Optimisation settings (the debiaser's parameters of the same names)."""

    beta: float = 1.0
    ssim_weight: float = 1.0
    mse_weight: float = 0.5
    erase_prob: float = 0.5
    attention_penalty: float = 1.0
    max_epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    val_fraction: float = 0.1
    patience: int = 5
    seed: int = 0
    progress: bool = True
    mixed_precision: bool = False  # autocast (bf16/fp16) on CUDA; ignored on CPU


@dataclass
class TrainReport:
    """What training produced besides the weights."""

    history: list[dict[str, float]] = field(default_factory=list)
    val_ssim: float | None = None
    val_mse: float | None = None
    n_train: int = 0
    n_val: int = 0
    samples_per_s: float = 0.0
    epochs: int = 0


def _weight_map(model: torch.nn.Module) -> torch.Tensor | None:
    getter = getattr(unwrap(model), "weight_map", None)
    return getter() if callable(getter) else None


def train_autoencoder(module: torch.nn.Module, images: np.ndarray, cfg: TrainConfig,
                      device: str) -> TrainReport:
    """Train ``module`` (returns ``(recon, mu, logvar)``) to reconstruct clean ``images``
    from randomly erased copies; early-stops on a held-out ``val_fraction`` and keeps the
    best weights.  ``images``: float32 ``(n, 1, S, S)`` in [0, 1]."""
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(images))
    n_val = round(cfg.val_fraction * len(images)) if len(images) >= 20 else 0
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    module.to(device)
    model = wrap_ddp(module, device)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    amp = MixedPrecision(device, enabled=cfg.mixed_precision)
    loader = make_loader(images[train_idx], batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed,
                         drop_last=len(train_idx) > cfg.batch_size)
    erase_gen = torch_generator(cfg.seed + 1)
    stopper = EarlyStopping(patience=cfg.patience, min_delta=1e-5)
    report = TrainReport(n_train=len(train_idx), n_val=n_val)
    seen, busy = 0, 0.0
    loss_kw = {"beta": cfg.beta, "ssim_weight": cfg.ssim_weight, "mse_weight": cfg.mse_weight,
               "attention_penalty": cfg.attention_penalty}
    epochs = progress(range(cfg.max_epochs), desc="alphashift autoencoder", enabled=cfg.progress)
    for epoch in epochs:
        set_epoch(loader, epoch)
        model.train()
        start = time.perf_counter()
        total, count = 0.0, 0
        for (batch,) in loader:
            clean = batch.to(device)
            noisy = random_erase(clean, cfg.erase_prob, erase_gen)
            with amp.autocast():
                recon, mu, logvar = model(noisy)
            loss, terms = vae_loss(recon.float(), clean, mu.float(), logvar.float(), _weight_map(model), **loss_kw)
            check_finite(terms.total, f"alphashift autoencoder epoch {epoch}")
            amp.step(loss, optimiser)
            total += terms.total * len(clean)
            count += len(clean)
        busy += time.perf_counter() - start
        seen += count
        row = {"epoch": float(epoch), "train_loss": all_reduce_mean(total / max(count, 1), device)}
        if n_val:
            val = evaluate_reconstruction(module, images[val_idx], device, cfg.batch_size, loss_kw)
            row.update(val)
            report.history.append(row)
            if stopper.step(val["val_loss"], module):
                break
        else:
            report.history.append(row)
        report.epochs = epoch + 1
    if n_val:
        stopper.restore(module)
        final = evaluate_reconstruction(module, images[val_idx], device, cfg.batch_size, loss_kw)
        report.val_ssim, report.val_mse = final["val_ssim"], final["val_mse"]
    report.samples_per_s = seen / busy if busy > 0 else 0.0
    module.eval()
    return report


@torch.no_grad()
def evaluate_reconstruction(module: torch.nn.Module, images: np.ndarray, device: str,
                            batch_size: int, loss_kw: dict[str, float]) -> dict[str, float]:
    """Mean loss, SSIM and MSE of clean reconstructions (latent mean, no erasing)."""
    module.eval()
    losses, ssims, mses = [], [], []
    for start in range(0, len(images), batch_size):
        clean = torch.as_tensor(images[start:start + batch_size]).to(device)
        recon, mu, logvar = module(clean)
        _, terms = vae_loss(recon, clean, mu, logvar, _weight_map(module), **loss_kw)
        losses.append(terms.total * len(clean))
        ssims.append(ssim(recon, clean).sum().item())
        mses.append(((recon - clean) ** 2).flatten(1).mean(1).sum().item())
    n = float(len(images))
    return {"val_loss": sum(losses) / n, "val_ssim": sum(ssims) / n, "val_mse": sum(mses) / n}
