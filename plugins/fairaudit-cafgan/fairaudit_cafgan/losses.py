"""Differentiable losses of CAF-GAN: gradient penalty, soft TPR gap, lung plausibility.

Unlike the published code (which computes its critic terms under ``torch.no_grad``, see
METHODS.md §2.3), every term here keeps its graph: gradients flow from the frozen critics
through the generated images into the generator's parameters.  torch is imported inside
the functions, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: Terms of the clinical loss and their default weights.
CLINICAL_TERMS: dict[str, float] = {
    "area": 1.0,
    "balance": 1.0,
    "contiguity": 1.0,
    "midline": 1.0,
    "ambiguity": 1.0,
}
#: Terms penalised only above the reference (below is never implausible).
ONE_SIDED = frozenset({"midline", "ambiguity"})


def interpolate(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Random points on the segments between real and fake images (WGAN-GP), as a leaf
    tensor that requires gradients."""
    import torch

    alpha = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    return (alpha * real + (1.0 - alpha) * fake.detach()).detach().requires_grad_(True)


def gradient_penalty(scores: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty ``mean((||grad_x D(x_hat, c)||_2 - 1)^2)``.

    ``scores`` are the critic's outputs on ``mixed`` (from :func:`interpolate`); the penalty
    keeps its graph (``create_graph=True``) so that it trains the critic.
    """
    import torch

    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def soft_tpr_gap(
    probs: torch.Tensor,
    y: torch.Tensor,
    group_onehot: torch.Tensor,
    eps: float = 1e-6,
    level_up: bool = False,
) -> torch.Tensor:
    """Differentiable true-positive-rate gap between groups.

    ``TPR_g = sum_i p_i y_i G_ig / sum_i y_i G_ig`` for every group with at least one
    positive; the gap is ``max_g TPR_g - min_g TPR_g`` (fairlearn's equal-opportunity
    difference when ``p`` is 0/1 predictions).

    Parameters
    ----------
    probs:
        Soft predictions in ``[0, 1]``, shape ``(n,)``.
    y:
        Labels 0/1, shape ``(n,)``.
    group_onehot:
        Group membership, shape ``(n, k)``.
    level_up:
        Detach the best group's TPR: same value, but minimising the gap can only raise the
        lagging group (no "levelling down" of the best-served group).

    Returns
    -------
    torch.Tensor
        A scalar; zero (still attached to ``probs``) when fewer than two groups have positives.
    """
    y = y.to(probs.dtype)
    g = group_onehot.to(probs.dtype)
    positives = (y[:, None] * g).sum(dim=0)
    hits = ((probs * y)[:, None] * g).sum(dim=0)
    valid = positives > 0.5
    if int(valid.sum()) < 2:
        return probs.sum() * 0.0
    tpr = hits[valid] / (positives[valid] + eps)
    best = tpr.max().detach() if level_up else tpr.max()
    return best - tpr.min()


def soft_mask_statistics(soft_masks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-mask statistics, differentiable in the mask values.

    ``area``: lung fraction of the image; ``balance``: ``(L - R) / (L + R)`` with L/R the
    mass in the image's left/right half; ``contiguity``: anisotropic perimeter (total
    variation) over ``sqrt(area in pixels)``, about 6.4 for two round lungs and growing
    with the square root of the number of fragments and falling when the two fields merge;
    ``midline``: mean mask value in the central sixteenth of the columns over the image mean
    (the mediastinum separates the lungs; merged fields raise it); ``ambiguity``: uncertain mass
    ``sum 4 m (1 - m)`` over lung mass, small for confident masks (it stops a generator from
    meeting the other statistics with half-on probabilities instead of a real lung field).
    """
    import torch

    m = soft_masks if soft_masks.dim() == 3 else soft_masks.squeeze(1)
    h, w = m.shape[-2:]
    mass = m.flatten(1).sum(dim=1)
    left = m[..., : w // 2].flatten(1).sum(dim=1)
    right = m[..., w - w // 2 :].flatten(1).sum(dim=1)
    tv = (m[..., 1:, :] - m[..., :-1, :]).abs().flatten(1).sum(1) + (m[..., :, 1:] - m[..., :, :-1]).abs().flatten(
        1
    ).sum(1)
    return {
        "area": mass / (h * w),
        "balance": (left - right) / (left + right + 1e-6),
        "contiguity": tv / torch.sqrt(mass + 1.0),
        "midline": m[..., w // 2 - max(1, w // 32) : w // 2 + max(1, w // 32)].flatten(1).mean(dim=1)
        / (mass / (h * w) + 1e-3),
        "ambiguity": (4.0 * m * (1.0 - m)).flatten(1).sum(dim=1) / (mass + 1.0),
    }


#: Floors of the reference standard deviations (a homogeneous reference set must not make
#: the loss explode).
STD_FLOORS: dict[str, float] = {
    "area": 0.01,
    "balance": 0.02,
    "contiguity": 0.1,
    "midline": 0.02,
    "ambiguity": 0.02,
}


def reference_stats(soft_masks: torch.Tensor, min_std: float | None = None) -> dict[str, float]:
    """Mean and standard deviation of :func:`soft_mask_statistics` over reference masks
    (the segmenter's output on real training images); standard deviations are floored at
    :data:`STD_FLOORS` (or ``min_std``)."""
    import torch

    with torch.no_grad():
        return stats_reference(soft_mask_statistics(soft_masks.float()), min_std)


def stats_reference(stats: Mapping[str, torch.Tensor], min_std: float | None = None) -> dict[str, float]:
    """:func:`reference_stats` from per-mask statistics already computed (e.g. block by block)."""
    floors = STD_FLOORS if min_std is None else dict.fromkeys(STD_FLOORS, min_std)
    out: dict[str, float] = {}
    for key, values in stats.items():
        out[f"{key}_mean"] = float(values.mean())
        out[f"{key}_std"] = max(float(values.std()) if len(values) > 1 else 0.0, floors[key])
    return out


def conditional_reference(
    soft_masks: torch.Tensor, conditions: torch.Tensor, n_conditions: int, min_count: int = 8
) -> dict[str, torch.Tensor]:
    """:func:`reference_stats` per condition (label x group): one value per condition for each
    ``<term>_mean`` / ``<term>_std``.  Lung fields differ by sex, and opacities change what a
    segmenter sees in diseased lungs, so each generated image is compared with real images of
    its own condition.  Conditions with fewer than ``min_count`` images use the overall
    statistics.  Index the result with a batch's conditions to get per-sample references for
    :func:`clinical_loss`."""
    import torch

    with torch.no_grad():
        stats = soft_mask_statistics(soft_masks.float())
    return conditional_stats_reference(stats, conditions, n_conditions, min_count)


def conditional_stats_reference(
    stats: Mapping[str, torch.Tensor], conditions: torch.Tensor, n_conditions: int, min_count: int = 8
) -> dict[str, torch.Tensor]:
    """:func:`conditional_reference` from per-mask statistics (one value per mask and term)."""
    import torch

    overall = stats_reference(stats)
    table = {key: torch.full((n_conditions,), value) for key, value in overall.items()}
    for c in range(n_conditions):
        rows = conditions == c
        if int(rows.sum()) >= min_count:
            for key, value in stats_reference({k: v[rows] for k, v in stats.items()}).items():
                table[key][c] = value
    return table


def _huber_excess(z: torch.Tensor, tolerance: float) -> torch.Tensor:
    import torch

    excess = torch.relu(z - tolerance)
    return torch.where(excess < 1.0, 0.5 * excess**2, excess - 0.5)


def clinical_loss(
    soft_masks: torch.Tensor,
    reference: Mapping[str, float],
    *,
    weights: Mapping[str, float] | None = None,
    tolerance: float = 1.5,
    reduction: str = "mean",
) -> torch.Tensor:
    """Lung-plausibility loss of soft masks against reference statistics.

    For each term (area, left/right balance, contiguity, midline, ambiguity; see
    :func:`soft_mask_statistics`) the standardised deviation ``z = (s - mean) / std`` is
    penalised by a Huber function of its excess over ``tolerance`` standard deviations
    (two-sided for area, balance and contiguity; one-sided for midline and ambiguity: only
    more lung at the midline or less certainty than the reference is implausible).  Masks within
    ``tolerance`` of the reference on every term have zero loss.

    Parameters
    ----------
    soft_masks:
        Segmenter probabilities, shape ``(n, H, W)`` or ``(n, 1, H, W)``.
    reference:
        Output of :func:`reference_stats` (floats), or per-sample tensors of shape ``(n,)``
        for every key (a :func:`conditional_reference` table indexed by the conditions).
    weights:
        Per-term weights (default :data:`CLINICAL_TERMS`).
    reduction:
        ``"mean"`` (scalar) or ``"none"`` (one value per mask).
    """
    w = {**CLINICAL_TERMS, **(weights or {})}
    stats = soft_mask_statistics(soft_masks)
    total = soft_masks.new_zeros(len(soft_masks))
    for term in CLINICAL_TERMS:
        z = (stats[term] - reference[f"{term}_mean"]) / reference[f"{term}_std"]
        if term not in ONE_SIDED:
            z = z.abs()
        total = total + w[term] * _huber_excess(z, tolerance)
    if reduction == "none":
        return total
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return total.mean()


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Segmentation loss: binary cross-entropy plus soft Dice loss."""
    import torch

    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = (2 * (p * t).sum(1) + 1.0) / (p.sum(1) + t.sum(1) + 1.0)
    return bce + (1.0 - dice).mean()
