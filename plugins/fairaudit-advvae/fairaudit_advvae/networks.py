"""The networks: a Gaussian VAE with a task head, per-attribute adversaries, gradient reversal.

With ``hidden_dims=()`` the encoder is a single ``Linear(d, 2k)`` and the decoder a single
``Linear(k, d)``: the published architecture (Zheng et al., MIDL 2025).

This module imports torch at top level; the debiaser imports it lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """``Linear -> ReLU`` for each hidden width, then a final ``Linear`` (no activation)."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU()]
        width = int(h)
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class _ReverseGrad(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``-scale`` backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Gradient reversal layer: ``x`` forward, ``-scale * grad`` backward."""
    return _ReverseGrad.apply(x, scale)


class DebiasingVAE(nn.Module):
    """Encoder ``x -> (mu, logvar)``, decoder ``z -> x_hat`` and a task head ``mu -> logit``.

    ``forward`` returns ``(mu, logvar, z, recon, task_logit)``; ``z`` is a reparameterised sample
    when ``sample`` is true, else ``mu``.  The task head reads ``mu``, the deterministic code that
    :meth:`~fairaudit_advvae.debiaser.AdversarialVAEDebiaser.transform` uses.
    """

    def __init__(
        self,
        input_dim: int,
        latent_dim: int,
        hidden_dims: Sequence[int] = (),
        task_hidden: Sequence[int] = (),
    ):
        super().__init__()
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.encoder = mlp(input_dim, hidden_dims, 2 * latent_dim)
        self.decoder = mlp(latent_dim, tuple(reversed(tuple(hidden_dims))), input_dim)
        self.task_head = mlp(latent_dim, task_hidden, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, ...]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        return mu, logvar, z, self.decode(z), self.task_head(mu).squeeze(-1)


class Adversaries(nn.Module):
    """One head per sensitive attribute, each reading the batch-standardised latent code.

    The input is standardised with the statistics of the batch itself (no learned affine, no
    running averages), so the encoder cannot "fool" a fixed adversary by shifting or rescaling
    the whole code (e.g. into a region where every ReLU is off and the output is constant); to
    lower the adversary's score it has to remove the attribute from the relative layout of the
    codes.
    """

    def __init__(self, latent_dim: int, n_outputs: Sequence[int], hidden: Sequence[int] = (64,)):
        super().__init__()
        self.latent_dim = latent_dim
        self.heads = nn.ModuleList(mlp(latent_dim, hidden, int(k)) for k in n_outputs)

    def forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        z = (z - z.mean(dim=0, keepdim=True)) / (
            z.var(dim=0, unbiased=False, keepdim=True) + 1e-5
        ).sqrt()
        return [head(z) for head in self.heads]


class AdvVAE(nn.Module):
    """The VAE and its adversaries (one state dict for checkpoints and early stopping)."""

    def __init__(self, vae: DebiasingVAE, adversaries: Adversaries):
        super().__init__()
        self.vae, self.adversaries = vae, adversaries
