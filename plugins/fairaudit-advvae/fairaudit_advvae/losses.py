"""Loss terms, normalised so that their weights (beta, lambda_task, lambda_adv) are comparable.

* Reconstruction: squared error summed over input dimensions, divided by the input dimension
  ``d`` (so it equals the per-element MSE), averaged over the batch.
* KL: ``KL(q(z|x) || N(0, I))`` summed over latent dimensions, divided by the same ``d``,
  averaged over the batch.  Both terms are per input element, so ``beta = 1`` is the negative ELBO
  of a Gaussian decoder with variance 1/2, divided by ``d``.  (The published notebook averages the
  MSE over elements but sums the KL over batch and dimensions, so the KL dominates.)
* Each adversary loss is divided by its chance level (the loss of the best constant predictor),
  so 1.0 means "no better than guessing the group frequencies" for every attribute kind.

This module imports torch at top level; the debiaser imports it lazily.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from fairaudit_advvae.attributes import AttributeTarget


def reconstruction_loss(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return ((recon - x) ** 2).sum(dim=1).mean() / x.shape[1]


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor, input_dim: int) -> torch.Tensor:
    kl = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())
    return kl.sum(dim=1).mean() / input_dim


def task_loss(logit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logit, y)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def attribute_loss(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, spec: AttributeTarget
) -> torch.Tensor:
    """The adversary's loss for one attribute, divided by its chance level (rows without a value
    are ignored)."""
    if spec.kind == "binary":
        per_row = F.binary_cross_entropy_with_logits(output.squeeze(-1), target, reduction="none")
    elif spec.kind == "multiclass":
        per_row = F.cross_entropy(output, target.long(), reduction="none")
    else:
        per_row = (output.squeeze(-1) - target) ** 2
    return _masked_mean(per_row, mask) / spec.chance_loss


def adversary_losses(
    outputs: Sequence[torch.Tensor],
    targets: torch.Tensor,
    masks: torch.Tensor,
    specs: Sequence[AttributeTarget],
) -> torch.Tensor:
    """Chance-normalised loss of every adversary, shape ``(A,)``."""
    return torch.stack(
        [
            attribute_loss(out, targets[:, i], masks[:, i], spec)
            for i, (out, spec) in enumerate(zip(outputs, specs, strict=True))
        ]
    )


def predictions(output: torch.Tensor, spec: AttributeTarget) -> torch.Tensor:
    """Scores for metrics: P(class 1), class probabilities (multiclass) or the value."""
    if spec.kind == "binary":
        return torch.sigmoid(output.squeeze(-1))
    if spec.kind == "multiclass":
        return torch.softmax(output, dim=-1)
    return output.squeeze(-1)
