"""The conditional WGAN-GP training loop with the fairness and clinical generator terms.

Generator loss: ``-D(G(z, c), c) + lambda_fair * soft_tpr_gap + lambda_clinic * clinical``.
With both lambdas at 0 this is a plain conditional WGAN-GP (the comparison arm).
Each critic step uses one critic forward over ``[real, fake, interpolates]`` and each
generator step one generator forward over ``[adversarial batch, fairness batch]``, so the
loop runs unchanged under DistributedDataParallel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fairaudit.training import (
    check_finite,
    make_dataset_loader,
    progress,
    rank,
    set_epoch,
    torch_generator,
    unwrap,
)

if TYPE_CHECKING:
    import torch

    from fairaudit_cafgan.data import WorkingImages


@dataclass
class GANSettings:
    """Hyperparameters of the adversarial loop (see :class:`~fairaudit_cafgan.CAFGAN`)."""

    z_dim: int
    n_groups: int
    n_critic: int = 5
    gp_weight: float = 10.0
    drift_weight: float = 1e-3
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    lambda_fair: float = 0.0
    lambda_clinic: float = 0.0
    #: Fraction of the generator steps over which both lambdas ramp up linearly from 0.
    lambda_warmup: float = 0.25
    fair_per_group: int = 8
    #: Only raise the lagging group's TPR (see :func:`~fairaudit_cafgan.losses.soft_tpr_gap`).
    fair_level_up: bool = True
    clinical_tolerance: float = 1.5
    batch_size: int = 64
    max_epochs: int = 50
    n_steps: int | None = None
    device: str = "cpu"
    seed: int = 0
    show_progress: bool = False
    #: Groups that have real positives (the fairness batch draws positives of these).
    fair_groups: list[int] = field(default_factory=list)
    #: DataLoader worker processes decoding streamed images (0: in this process).
    num_workers: int = 0


@dataclass
class FrozenCritics:
    """The frozen fairness and clinical critics and the clinical reference statistics:
    floats (one reference for every image) or a per-condition table of tensors from
    :func:`~fairaudit_cafgan.losses.conditional_reference`."""

    classifier: torch.nn.Module | None
    segmenter: torch.nn.Module | None
    reference: Mapping[str, Any] = field(default_factory=dict)

    def reference_for(self, c: torch.Tensor) -> dict[str, Any]:
        """References for a batch with conditions ``c``."""
        return {k: v if isinstance(v, float) else v.to(c.device)[c] for k, v in self.reference.items()}


def conditions(y: torch.Tensor, group: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Condition index ``y * n_groups + group`` (one embedding row per label x group)."""
    return y.long() * n_groups + group.long()


def fairness_batch(
    settings: GANSettings, device: str, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noise, conditions and group one-hots of ``fair_per_group`` positives per group."""
    import torch

    groups = torch.tensor(settings.fair_groups, dtype=torch.long).repeat_interleave(settings.fair_per_group)
    z = torch.randn(len(groups), settings.z_dim, generator=generator).to(device)
    onehot = torch.nn.functional.one_hot(groups, settings.n_groups).float().to(device)
    c = conditions(torch.ones_like(groups), groups, settings.n_groups).to(device)
    return z, c, onehot


def generator_losses(
    G: torch.nn.Module,
    D: torch.nn.Module,
    z: torch.Tensor,
    c: torch.Tensor,
    critics: FrozenCritics,
    settings: GANSettings,
    fair: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ramp: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The generator's loss terms (all attached to the generator's graph).

    ``fair`` is the output of :func:`fairness_batch`; it is drawn when ``lambda_fair > 0``
    and ``fair`` is None.  ``ramp`` in [0, 1] scales both lambdas (warm-up).  Returns
    ``adversarial``, ``fairness`` and ``clinical`` (when their weight is positive) and
    ``total``.
    """
    import torch

    from fairaudit_cafgan.losses import clinical_loss, soft_tpr_gap

    use_fair = settings.lambda_fair > 0 and critics.classifier is not None and len(settings.fair_groups) > 1
    use_clin = settings.lambda_clinic > 0 and critics.segmenter is not None
    if use_fair and fair is None:
        fair = fairness_batch(settings, z.device)
    n = len(z)
    if use_fair:
        assert fair is not None
        fake_all = G(torch.cat([z, fair[0]]), torch.cat([c, fair[1]]))
    else:
        fake_all = G(z, c)
    fake = fake_all[:n]
    out = {"adversarial": -unwrap(D)(fake, c).mean()}
    total = out["adversarial"]
    if use_fair:
        assert fair is not None and critics.classifier is not None
        probs = torch.sigmoid(critics.classifier(fake_all[n:]))
        out["fairness"] = soft_tpr_gap(probs, torch.ones_like(probs), fair[2], level_up=settings.fair_level_up)
        total = total + ramp * settings.lambda_fair * out["fairness"]
    if use_clin:
        assert critics.segmenter is not None
        soft = torch.sigmoid(critics.segmenter(fake))
        out["clinical"] = clinical_loss(soft, critics.reference_for(c), tolerance=settings.clinical_tolerance)
        total = total + ramp * settings.lambda_clinic * out["clinical"]
    out["total"] = total
    return out


def critic_loss(
    G: torch.nn.Module,
    D: torch.nn.Module,
    real: torch.Tensor,
    c: torch.Tensor,
    settings: GANSettings,
) -> dict[str, torch.Tensor]:
    """Critic loss ``D(fake) - D(real) + gp_weight * GP + drift * D(real)^2`` (one forward)."""
    import torch

    from fairaudit_cafgan.losses import gradient_penalty, interpolate

    z = torch.randn(len(real), settings.z_dim, device=real.device)
    with torch.no_grad():
        fake = G(z, c)
    mixed = interpolate(real, fake)
    scores = D(torch.cat([real, fake, mixed]), torch.cat([c, c, c]))
    d_real, d_fake, d_mixed = scores.split(len(real))
    gp = gradient_penalty(d_mixed, mixed)
    wasserstein = d_real.mean() - d_fake.mean()
    total = -wasserstein + settings.gp_weight * gp + settings.drift_weight * (d_real**2).mean()
    return {"total": total, "wasserstein": wasserstein, "gp": gp}


class _Means:
    """Running means of named scalars over one epoch."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, key: str, value: float) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + value
        self.counts[key] = self.counts.get(key, 0) + 1

    def values(self) -> dict[str, float]:
        return {k: v / self.counts[k] for k, v in self.sums.items()}


class _Monitor:
    """Fairness and clinical terms on a fixed noise batch, evaluated after each epoch
    (for both arms, so the training curves are comparable)."""

    def __init__(self, settings: GANSettings, data_conditions: np.ndarray, critics: FrozenCritics):
        import torch

        self.settings, self.critics = settings, critics
        gen = torch_generator(settings.seed + 7919)
        rows = np.random.default_rng(settings.seed).choice(len(data_conditions), size=64)
        self.z = torch.randn(64, settings.z_dim, generator=gen)
        self.c = torch.as_tensor(data_conditions[rows], dtype=torch.long)
        self.fair = (
            fairness_batch(GANSettings(**{**settings.__dict__, "fair_per_group": 16}), "cpu", gen)
            if len(settings.fair_groups) > 1
            else None
        )

    def __call__(self, G: torch.nn.Module) -> dict[str, float]:
        import torch

        from fairaudit_cafgan.losses import clinical_loss, soft_tpr_gap

        dev = self.settings.device
        out: dict[str, float] = {}
        with torch.no_grad():
            if self.critics.segmenter is not None:
                soft = torch.sigmoid(self.critics.segmenter(G(self.z.to(dev), self.c.to(dev))))
                ref = self.critics.reference_for(self.c.to(dev))
                out["clinical"] = float(clinical_loss(soft, ref, tolerance=self.settings.clinical_tolerance))
            if self.critics.classifier is not None and self.fair is not None:
                z, c, onehot = (t.to(dev) for t in self.fair)
                probs = torch.sigmoid(self.critics.classifier(G(z, c)))
                out["fairness"] = float(soft_tpr_gap(probs, torch.ones_like(probs), onehot))
                out["positive_score"] = float(probs.mean())
        return out


def train_gan(
    G: torch.nn.Module,
    D: torch.nn.Module,
    images: torch.Tensor | WorkingImages,
    y: torch.Tensor,
    group: torch.Tensor,
    critics: FrozenCritics,
    settings: GANSettings,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``G`` and ``D`` (possibly DDP-wrapped) on real ``images`` in ``[0, 1]`` (a tensor, or
    :class:`~fairaudit_cafgan.data.WorkingImages` that streamed folders decode per batch).

    The critic steps on every batch and the generator on every ``n_critic``-th batch.
    Training stops after ``max_epochs`` epochs or, when ``n_steps`` is set, after that
    many generator steps.  Returns one history record per epoch.
    """
    import torch

    from fairaudit_cafgan.data import image_dataset

    dev = settings.device
    batch = max(2, min(settings.batch_size, len(images)))
    loader = make_dataset_loader(
        image_dataset(images, y.long(), group.long()),
        batch_size=batch,
        shuffle=True,
        seed=settings.seed,
        drop_last=True,
        num_workers=settings.num_workers,
    )
    opt_g = torch.optim.Adam(G.parameters(), lr=settings.lr_g, betas=settings.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=settings.lr_d, betas=settings.betas)
    all_c = conditions(y, group, settings.n_groups).numpy()
    monitor = _Monitor(settings, all_c, critics)
    d_params = list(unwrap(D).parameters())
    per_epoch = max(1, len(loader) // settings.n_critic)
    max_epochs = settings.max_epochs if settings.n_steps is None else -(-settings.n_steps // per_epoch)
    total_steps = settings.n_steps if settings.n_steps is not None else max_epochs * per_epoch
    warmup_steps = settings.lambda_warmup * total_steps
    # same sampler seed on every rank (disjoint shards); different noise per rank
    torch.manual_seed(settings.seed + 1009 * rank())
    history: list[dict[str, float]] = []
    g_steps = batches = 0
    start = time.perf_counter()
    for epoch in progress(range(max_epochs), desc="cafgan: GAN", enabled=settings.show_progress):
        set_epoch(loader, epoch)
        G.train()
        D.train()
        means = _Means()
        add = means.add
        for i, (xb, yb, gb) in enumerate(loader):
            xb = xb.to(dev)
            cb = conditions(yb, gb, settings.n_groups).to(dev)
            d_out = critic_loss(G, D, xb, cb, settings)
            opt_d.zero_grad(set_to_none=True)
            d_out["total"].backward()
            opt_d.step()
            d_loss = float(d_out["total"].detach())
            check_finite(d_loss, f"cafgan critic (epoch {epoch}, batch {i})")
            add("critic_loss", d_loss)
            add("wasserstein", float(d_out["wasserstein"].detach()))
            add("gradient_penalty", float(d_out["gp"].detach()))
            batches += 1
            if batches % settings.n_critic:
                continue
            for p in d_params:
                p.requires_grad_(False)
            z = torch.randn(len(xb), settings.z_dim, device=dev)
            ramp = min(1.0, (g_steps + 1) / warmup_steps) if warmup_steps > 0 else 1.0
            g_out = generator_losses(G, D, z, cb[torch.randperm(len(cb), device=dev)], critics, settings, ramp=ramp)
            opt_g.zero_grad(set_to_none=True)
            g_out["total"].backward()
            opt_g.step()
            for p in d_params:
                p.requires_grad_(True)
            g_loss = float(g_out["total"].detach())
            check_finite(g_loss, f"cafgan generator (epoch {epoch}, step {g_steps})")
            for key in ("adversarial", "fairness", "clinical"):
                if key in g_out:
                    add(f"generator_{key}", float(g_out[key].detach()))
            g_steps += 1
            if settings.n_steps is not None and g_steps >= settings.n_steps:
                break
        G.eval()
        record = {
            "epoch": float(epoch),
            "generator_steps": float(g_steps),
            "seconds": time.perf_counter() - start,
            **means.values(),
            **{f"monitor_{k}": v for k, v in monitor(unwrap(G)).items()},
        }
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if settings.n_steps is not None and g_steps >= settings.n_steps:
            break
    G.eval()
    return history
