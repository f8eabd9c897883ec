"""The exact linear best response: a ridge adversary per attribute, kept in closed form.

A learned adversary lags behind the encoder, and against a lagging adversary the encoder's
cheapest move is to *mix* the attribute into other latent directions rather than remove it.
For the linear part of the game there is no need to lag: the least-squares adversary on the
latent means of all training rows has a closed form, and its sufficient statistics (the Gram
matrix ``A^T A`` and ``A^T Y`` of ``A = [mu, 1]``) are updated as cached rows change, so the
best response is re-solved for every encoder step at ``O(k^3)`` cost (``k``: latent size).

This module imports torch at top level; the debiaser imports it lazily.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from fairaudit_advvae.attributes import AttributeTarget


def encode_targets_matrix(T: torch.Tensor, spec: AttributeTarget, column: int) -> torch.Tensor:
    """Regression targets of an attribute: one-hot groups, or the standardised value."""
    t = T[:, column]
    if spec.kind == "continuous":
        return t[:, None].double()
    return F.one_hot(t.long(), len(spec.classes)).double()


class LinearAdversary:
    """Closed-form ridge adversaries for every attribute over a cache of latent means."""

    def __init__(
        self,
        cache: torch.Tensor,
        T: torch.Tensor,
        M: torch.Tensor,
        specs: Sequence[AttributeTarget],
        ridge: float = 1e-3,
    ):
        self.specs, self.ridge = list(specs), ridge
        self.T, self.M = T, M
        self.targets = [encode_targets_matrix(T, s, i) for i, s in enumerate(self.specs)]
        self.variances: list[float] = []
        for i, Y in enumerate(self.targets):
            keep = M[:, i] > 0
            var = float(Y[keep].var(dim=0, unbiased=False).sum()) if keep.sum() > 1 else 1.0
            self.variances.append(max(var, 1e-8))
        self.refresh(cache)

    @staticmethod
    def _design(mu: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [mu.double(), torch.ones(len(mu), 1, dtype=torch.float64, device=mu.device)], dim=1
        )

    def refresh(self, cache: torch.Tensor) -> None:
        """Recompute the sufficient statistics from the whole cache."""
        A = self._design(cache)
        self.gram, self.cross = [], []
        for i, Y in enumerate(self.targets):
            w = self.M[:, i].double()[:, None]
            self.gram.append(A.T @ (A * w))
            self.cross.append(A.T @ (Y * w))

    def update(self, rows: torch.Tensor, old: torch.Tensor, new: torch.Tensor) -> None:
        """Rows ``rows`` of the cache changed from ``old`` to ``new`` latent means."""
        A_old, A_new = self._design(old), self._design(new)
        for i, Y in enumerate(self.targets):
            w = self.M[rows, i].double()[:, None]
            y = Y[rows]
            self.gram[i] += A_new.T @ (A_new * w) - A_old.T @ (A_old * w)
            self.cross[i] += A_new.T @ (y * w) - A_old.T @ (y * w)

    def losses(self, mu: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Each best-response adversary's squared error on the batch, relative to chance, ``(A,)``.

        The coefficients are constants (solved without gradient); the gradient reaches ``mu``.
        """
        A = self._design(mu)
        out = []
        for i, Y in enumerate(self.targets):
            with torch.no_grad():
                reg = self.ridge * torch.eye(
                    len(self.gram[i]), dtype=torch.float64, device=mu.device
                )
                reg[-1, -1] = 0.0
                coef = torch.linalg.solve(
                    self.gram[i] + reg * max(float(self.gram[i][-1, -1]), 1.0), self.cross[i]
                )
            w = self.M[rows, i].double()
            err = ((Y[rows] - A @ coef) ** 2).sum(dim=1)
            out.append((err * w).sum() / w.sum().clamp_min(1.0) / self.variances[i])
        return torch.stack(out).to(mu.dtype)
