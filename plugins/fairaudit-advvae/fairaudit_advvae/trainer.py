"""The min-max training loop (gradient reversal or alternating updates) and the adversary audit.

This module imports torch at top level; the debiaser imports it lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.func import functional_call

from fairaudit.training import (
    EarlyStopping,
    all_reduce_mean,
    check_finite,
    is_distributed,
    make_loader,
    progress,
    set_epoch,
    torch_generator,
    wrap_ddp,
)
from fairaudit_advvae.attributes import AttributeTarget
from fairaudit_advvae.leakage import probe_leakage
from fairaudit_advvae.linear_adversary import LinearAdversary
from fairaudit_advvae.losses import (
    adversary_losses,
    kl_loss,
    predictions,
    reconstruction_loss,
    task_loss,
)
from fairaudit_advvae.networks import Adversaries, AdvVAE, DebiasingVAE, reverse_gradient
from fairaudit_advvae.scoring import attribute_scores

#: At most this many training rows fit the per-epoch leakage probe (it only has to be stable).
PROBE_ROWS = 4096

#: Weight of the newest epoch in the exponentially smoothed objective that early stopping
#: monitors: the min-max game makes the epoch-to-epoch objective noisy while the learning rate
#: is high.
SMOOTHING = 0.5


@dataclass(frozen=True)
class Split:
    """Standardised inputs, labels, encoded attributes and their masks (numpy, float32)."""

    X: np.ndarray
    y: np.ndarray
    T: np.ndarray
    M: np.ndarray


@dataclass(frozen=True)
class LoopConfig:
    beta: float
    lambda_adv: float
    lambda_task: float
    mode: Literal["grl", "alternating"]
    adversary_steps: int
    lr: float
    lr_schedule: Literal["cosine", "constant"]
    linear_adversary: bool
    adversary_lr: float
    batch_size: int
    max_epochs: int
    patience: int
    min_epochs: int
    seed: int
    device: str
    progress: bool


def _tensor(a: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), device=device)


@torch.no_grad()
def encode_mean(
    vae: DebiasingVAE, X: np.ndarray, device: str, batch_size: int = 4096
) -> torch.Tensor:
    """Posterior means ``mu`` of ``X`` (eval mode, no gradient)."""
    vae.eval()
    parts = [
        vae.encode(_tensor(X[i : i + batch_size], device))[0] for i in range(0, len(X), batch_size)
    ]
    return torch.cat(parts) if parts else torch.empty(0, vae.latent_dim, device=device)


@torch.no_grad()
def evaluate(
    model: AdvVAE,
    specs: Sequence[AttributeTarget],
    data: Split,
    cfg: LoopConfig,
    probe_mu: torch.Tensor,
    probe_data: Split,
) -> dict[str, float]:
    """Validation losses (deterministic: the decoder reads ``mu``), task AUC, the game
    adversaries' scores, a fresh closed-form probe per attribute (fit on ``probe_mu``, the training
    rows' latent means) and the early-stopping objective
    ``recon + beta*KL + lambda_task*task + lambda_adv * sum_a leak_a`` (see :mod:`.leakage`)."""
    from sklearn.metrics import roc_auc_score

    model.eval()
    device = cfg.device
    x, y = _tensor(data.X, device), _tensor(data.y, device)
    T, M = _tensor(data.T, device), _tensor(data.M, device)
    mu, logvar, _, recon, logit = model.vae(x, sample=False)
    out: dict[str, float] = {
        "val_recon": float(reconstruction_loss(recon, x)),
        "val_kl": float(kl_loss(mu, logvar, x.shape[1])),
        "val_task": float(task_loss(logit, y)),
    }
    yn = data.y.astype(int)
    out["val_task_auc"] = (
        float(roc_auc_score(yn, logit.cpu().numpy())) if len(np.unique(yn)) == 2 else float("nan")
    )
    adv_out = model.adversaries(mu)
    losses = adversary_losses(adv_out, T, M, specs).cpu().numpy()
    rows = slice(None, PROBE_ROWS)  # the training rows are in random order already
    probes = probe_leakage(
        probe_mu[rows],
        _tensor(probe_data.T[rows], device),
        _tensor(probe_data.M[rows], device),
        mu,
        data.T,
        data.M,
        specs,
    )
    leak = 0.0
    for i, spec in enumerate(specs):
        out[f"val_adv:{spec.name}"] = float(losses[i])
        scores = attribute_scores(
            spec, predictions(adv_out[i], spec).cpu().numpy(), data.T[:, i], data.M[:, i]
        )
        out[f"val_adv_{spec.score_name}:{spec.name}"] = (
            float(scores["score"]) if scores["score"] is not None else float("nan")
        )
        probe_leak, probe_score = probes[spec.name]
        probe_name = "r2" if spec.kind == "continuous" else "auc"
        out[f"val_probe_{probe_name}:{spec.name}"] = (
            float("nan") if probe_score is None else float(probe_score)
        )
        leak += probe_leak
    out["val_leak"] = leak
    out["val_objective"] = (
        out["val_recon"]
        + cfg.beta * out["val_kl"]
        + cfg.lambda_task * out["val_task"]
        + cfg.lambda_adv * leak
    )
    return out


def train_advvae(
    model: AdvVAE,
    specs: Sequence[AttributeTarget],
    train: Split,
    val: Split | None,
    cfg: LoopConfig,
    desc: str = "advvae",
) -> tuple[list[dict[str, float]], int]:
    """Train ``model`` in place; returns the per-epoch history and the (1-based) epoch kept.

    Per batch, the encoder, decoder and task head take one step on
    ``L_vae + lambda_task * L_task - lambda_adv * sum_a min(L_a, 1)`` (``L_a``: adversary ``a``'s
    loss relative to chance), then the adversaries take ``adversary_steps`` steps on random
    batches of a cache of every training row's latent mean (rows are refreshed as they pass, so
    the cache is at most one epoch old).  The adversaries therefore stay close to their best
    response; against a lagging adversary the encoder learns to fool *that* adversary (mixing the
    attribute into other directions) instead of removing the attribute.

    With ``cfg.linear_adversary`` the encoder also plays against the exact ridge best response
    (:class:`~fairaudit_advvae.linear_adversary.LinearAdversary`), clipped at chance likewise.

    * ``mode="alternating"``: the encoder step uses frozen adversaries (``torch.func``
      functional call on detached weights); the clip at chance bounds the objective, so the
      encoder is never rewarded for making an adversary confidently wrong.
    * ``mode="grl"``: the encoder step goes through a gradient reversal layer of strength
      ``lambda_adv`` and the adversaries learn in the same backward pass (one of the
      ``adversary_steps``); the reversed gradient is unbounded, as in Ganin & Lempitsky (2015).

    With ``lr_schedule="cosine"`` the VAE's learning rate decays to 0 over ``max_epochs``: with a
    constant step the encoder keeps re-introducing a residual of the attribute at each step, and
    that residual shrinks with the step size.  Early stopping monitors ``val_objective`` (see
    :func:`evaluate`), exponentially smoothed (:data:`SMOOTHING`), from epoch ``min_epochs`` on
    and restores the best state at the end.
    """
    device = cfg.device
    model.to(device)
    vae, adv = model.vae, model.adversaries
    vae_ddp, adv_ddp = wrap_ddp(vae, device), wrap_ddp(adv, device)
    opt_vae = torch.optim.Adam(vae.parameters(), lr=cfg.lr, foreach=True)
    opt_adv = torch.optim.Adam(adv.parameters(), lr=cfg.adversary_lr, foreach=True)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt_vae, T_max=cfg.max_epochs)
        if cfg.lr_schedule == "cosine"
        else None
    )
    n = len(train.X)
    loader = make_loader(
        train.X,
        train.y,
        train.T,
        train.M,
        np.arange(n),
        batch_size=cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        drop_last=n > 2 * cfg.batch_size,
    )
    T_all, M_all = _tensor(train.T, device), _tensor(train.M, device)
    cache = encode_mean(vae, train.X, device)
    linear = LinearAdversary(cache, T_all, M_all, specs) if cfg.linear_adversary else None
    sampler = torch_generator(cfg.seed + 1)
    cache_steps = cfg.adversary_steps - (1 if cfg.mode == "grl" else 0)
    stopper = EarlyStopping(patience=cfg.patience)
    history: list[dict[str, float]] = []
    for epoch in progress(range(cfg.max_epochs), desc=desc, enabled=cfg.progress):
        set_epoch(loader, epoch)
        vae.train()
        adv.train()
        lr_now = opt_vae.param_groups[0]["lr"]
        sums = torch.zeros(3 + len(specs), dtype=torch.float64, device=device)
        n_batches = 0
        for xb, yb, tb, mb, ib in loader:
            xb, yb, tb, mb, ib = (
                xb.to(device),
                yb.to(device),
                tb.to(device),
                mb.to(device),
                ib.to(device),
            )
            mu, logvar, _, recon, logit = vae_ddp(xb)
            rec = reconstruction_loss(recon, xb)
            kl = kl_loss(mu, logvar, xb.shape[1])
            tl = task_loss(logit, yb)
            loss = rec + cfg.beta * kl + cfg.lambda_task * tl
            if cfg.mode == "grl":
                per_attr = adversary_losses(
                    adv_ddp(reverse_gradient(mu, cfg.lambda_adv)), tb, mb, specs
                )
                loss = loss + per_attr.sum()
            else:
                frozen = {name: p.detach() for name, p in adv.named_parameters()}
                per_attr = adversary_losses(functional_call(adv, frozen, (mu,)), tb, mb, specs)
                if cfg.lambda_adv > 0:
                    loss = loss - cfg.lambda_adv * per_attr.clamp(max=1.0).sum()
            if linear is not None and cfg.lambda_adv > 0:
                loss = loss - cfg.lambda_adv * linear.losses(mu, ib).clamp(max=1.0).sum()
            opt_vae.zero_grad(set_to_none=True)
            opt_adv.zero_grad(set_to_none=True)
            loss.backward()
            opt_vae.step()
            if cfg.mode == "grl":
                opt_adv.step()
            if linear is not None:
                linear.update(ib, cache[ib], mu.detach())
            cache[ib] = mu.detach()
            for _ in range(cache_steps):
                idx = torch.randint(0, n, (min(cfg.batch_size, n),), generator=sampler).to(device)
                adv_loss = adversary_losses(
                    adv_ddp(cache[idx]), T_all[idx], M_all[idx], specs
                ).sum()
                opt_adv.zero_grad(set_to_none=True)
                adv_loss.backward()
                opt_adv.step()
            sums += torch.cat([torch.stack([rec, kl, tl]), per_attr]).detach().double()
            n_batches += 1
        if is_distributed():  # each rank refreshed only its own shard's rows
            cache = encode_mean(vae, train.X, device)
        if linear is not None:  # drop accumulated rounding in the running sums
            linear.refresh(cache)
        if scheduler is not None:
            scheduler.step()
        means = (sums / max(n_batches, 1)).cpu().numpy()
        record: dict[str, float] = {"epoch": float(epoch + 1), "lr": float(lr_now)}
        names = ["train_recon", "train_kl", "train_task"] + [f"train_adv:{s.name}" for s in specs]
        for key, value in zip(names, means, strict=True):
            record[key] = all_reduce_mean(float(value), device)
            check_finite(record[key], f"advvae epoch {epoch + 1} ({key})")
        record.update(evaluate(model, specs, val if val is not None else train, cfg, cache, train))
        check_finite(record["val_objective"], f"advvae epoch {epoch + 1} (validation objective)")
        smooth = (
            record["val_objective"]
            if not history
            else (
                SMOOTHING * record["val_objective"]
                + (1 - SMOOTHING) * history[-1]["val_objective_smooth"]
            )
        )
        record["val_objective_smooth"] = smooth
        history.append(record)
        if val is not None and epoch + 1 >= cfg.min_epochs and stopper.step(smooth, model):
            break
    best_epoch = len(history)
    if val is not None and stopper.best_state is not None:
        stopper.restore(model)
        best_epoch = 1 + int(
            np.argmin(
                [
                    h["val_objective_smooth"] if h["epoch"] >= cfg.min_epochs else np.inf
                    for h in history
                ]
            )
        )
    model.eval()
    return history, best_epoch


def fit_adversaries(
    adversaries: Adversaries,
    mu: torch.Tensor,
    data: Split,
    specs: Sequence[AttributeTarget],
    optimiser: torch.optim.Optimizer,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    device: str,
) -> None:
    """``epochs`` passes of the adversaries over fixed latent means ``mu`` (no encoder update).

    Run identically on every rank (full training split, same seed), so no gradient sync is needed.
    """
    T, M = _tensor(data.T, device), _tensor(data.M, device)
    n = len(mu)
    adversaries.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = adversary_losses(adversaries(mu[idx]), T[idx], M[idx], specs).sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()


def audit_adversaries(
    vae: DebiasingVAE,
    specs: Sequence[AttributeTarget],
    train: Split,
    val: Split,
    hidden: Sequence[int],
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: str,
) -> list[dict[str, float | str | None]]:
    """Train fresh adversaries on the frozen posterior means and score them on ``val``.

    This is the honest leakage check: the adversaries trained during the min-max game may have
    been fooled by the encoder's last move; new ones start from scratch.
    """
    mu_train, mu_val = encode_mean(vae, train.X, device), encode_mean(vae, val.X, device)
    torch.manual_seed(seed)
    adversaries = Adversaries(vae.latent_dim, [s.n_outputs for s in specs], hidden).to(device)
    optimiser = torch.optim.Adam(adversaries.parameters(), lr=lr)
    fit_adversaries(
        adversaries,
        mu_train,
        train,
        specs,
        optimiser,
        epochs,
        batch_size,
        torch_generator(seed),
        device,
    )
    adversaries.eval()
    rows: list[dict[str, float | str | None]] = []
    with torch.no_grad():
        outputs = adversaries(mu_val)
    for i, spec in enumerate(specs):
        scores = attribute_scores(
            spec, predictions(outputs[i], spec).cpu().numpy(), val.T[:, i], val.M[:, i]
        )
        rows.append(
            {
                "attribute": spec.name,
                "kind": spec.kind,
                "metric": spec.score_name,
                "score": scores["score"],
                "auc": scores["auc"],
                "chance": spec.chance_score,
            }
        )
    return rows
