"""Training of the two frozen critics on real data: the diagnostic CNN (fairness critic)
and the lung U-Net (clinical critic).  Both are frozen after training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fairaudit.training import check_finite, make_dataset_loader, progress, set_epoch, unwrap, wrap_ddp
from fairaudit_cafgan.data import WorkingImages, image_dataset

if TYPE_CHECKING:
    import torch


@dataclass
class CriticSettings:
    """Shared settings of a critic's training loop."""

    epochs: int
    batch_size: int
    lr: float
    device: str
    seed: int
    show_progress: bool = False
    #: Random blur and noise on training images (see :func:`degrade`).
    augment: bool = True
    #: DataLoader worker processes decoding streamed images (0: in this process).
    num_workers: int = 0


def degrade(images: torch.Tensor, max_blur: float = 1.2, max_noise: float = 0.08) -> torch.Tensor:
    """Random Gaussian blur (sigma up to ``max_blur`` px) and noise (sd up to ``max_noise``)
    per image.  Critics trained on degraded real images judge a generated image by its
    finding or anatomy rather than by the generator's blur and artefacts (without it the
    diagnostic CNN called almost every early generated image 'diseased', which saturates
    the TPR gap)."""
    import torch

    n = len(images)
    sigma = torch.rand(n, device=images.device) * max_blur + 0.05
    k = torch.arange(-2, 3, device=images.device, dtype=images.dtype)
    w = torch.exp(-(k[None] ** 2) / (2 * sigma[:, None] ** 2))
    w = w / w.sum(dim=1, keepdim=True)
    c = images.shape[1]
    x = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="replicate")
    x = x.reshape(1, n * c, *x.shape[2:])
    w = w.repeat_interleave(c, dim=0)
    x = torch.nn.functional.conv2d(x, w.view(n * c, 1, 1, 5), groups=n * c)
    x = torch.nn.functional.conv2d(x, w.view(n * c, 1, 5, 1), groups=n * c)
    x = x.view_as(images)
    noise = torch.randn_like(x) * torch.rand(n, 1, 1, 1, device=x.device) * max_noise
    return (x + noise).clamp(0.0, 1.0)


def cell_balanced_weights(y: torch.Tensor, group_idx: torch.Tensor) -> torch.Tensor:
    """Per-sample weights that give every (label, group) cell the same total weight
    (mean weight 1; empty cells are skipped).

    A classifier trained with them sees a prevalence of 1/2 in every group, so it cannot
    use group membership as a prior for the label: its score on an image reflects the
    finding, not the base rate of the image's group."""
    import torch

    cells = y.long() * (int(group_idx.max()) + 1) + group_idx.long()
    counts = torch.bincount(cells).float()
    n_cells = int((counts > 0).sum())
    return (len(cells) / (n_cells * counts[cells])).float()


def train_diagnostic_classifier(
    images: torch.Tensor | WorkingImages,
    y: torch.Tensor,
    *,
    image_size: int,
    base_channels: int,
    settings: CriticSettings,
    weights: torch.Tensor | None = None,
) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """Train :class:`~fairaudit_cafgan.networks.DiagnosticCNN` with BCE on real images
    ``(n, C, H, W)`` in ``[0, 1]`` (a tensor or :class:`~fairaudit_cafgan.data.WorkingImages`);
    returns the frozen network (on ``settings.device``) and its per-epoch history (loss,
    accuracy).  ``weights``: optional per-sample BCE weights (e.g. :func:`cell_balanced_weights`)."""
    import torch

    from fairaudit_cafgan.networks import DiagnosticCNN, freeze

    torch.manual_seed(settings.seed)
    module = DiagnosticCNN(image_size, base_channels, channels_in=images.shape[1]).to(settings.device)
    model = wrap_ddp(module, settings.device)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    w_all = torch.ones(len(y)) if weights is None else weights.float()
    loader = make_dataset_loader(image_dataset(images, y.float(), w_all), batch_size=settings.batch_size,
                                 shuffle=True, seed=settings.seed, num_workers=settings.num_workers)
    history: list[dict[str, float]] = []
    for epoch in progress(range(settings.epochs), desc="cafgan: diagnostic critic", enabled=settings.show_progress):
        set_epoch(loader, epoch)
        model.train()
        total = correct = count = 0.0
        for xb, yb, wb in loader:
            xb, yb, wb = xb.to(settings.device), yb.to(settings.device), wb.to(settings.device)
            if settings.augment:
                xb = degrade(xb)
            logits = model(xb)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yb, weight=wb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
            correct += float(((logits.detach() > 0).float() == yb).sum())
            count += len(xb)
        check_finite(total / max(count, 1), f"cafgan diagnostic critic epoch {epoch}")
        history.append(
            {
                "epoch": float(epoch),
                "loss": total / max(count, 1),
                "accuracy": correct / max(count, 1),
            }
        )
    return freeze(unwrap(model)), history


def train_segmenter(
    images: torch.Tensor | WorkingImages,
    masks: torch.Tensor,
    *,
    base_channels: int,
    depth: int,
    settings: CriticSettings,
) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """Train :class:`~fairaudit_cafgan.networks.LungUNet` with BCE + Dice on real images and
    lung masks ``(n, H, W)``; returns the frozen network and its history (loss, Dice)."""
    import torch

    from fairaudit_cafgan.losses import dice_bce_loss
    from fairaudit_cafgan.networks import LungUNet, freeze

    torch.manual_seed(settings.seed + 1)
    module = LungUNet(base_channels, depth=depth, channels_in=images.shape[1]).to(settings.device)
    model = wrap_ddp(module, settings.device)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    loader = make_dataset_loader(image_dataset(images, masks.float()), batch_size=settings.batch_size,
                                 shuffle=True, seed=settings.seed + 1, num_workers=settings.num_workers)
    history: list[dict[str, float]] = []
    for epoch in progress(range(settings.epochs), desc="cafgan: lung segmenter", enabled=settings.show_progress):
        set_epoch(loader, epoch)
        model.train()
        total = inter = union = count = 0.0
        for xb, mb in loader:
            xb, mb = xb.to(settings.device), mb.to(settings.device)
            if settings.augment:
                xb = degrade(xb)
            logits = model(xb)
            loss = dice_bce_loss(logits, mb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
            pred = (logits > 0).float()
            inter += float((pred * mb).sum())
            union += float(pred.sum() + mb.sum())
            count += len(xb)
        check_finite(total / max(count, 1), f"cafgan lung segmenter epoch {epoch}")
        history.append(
            {
                "epoch": float(epoch),
                "loss": total / max(count, 1),
                "dice": 2 * inter / max(union, 1.0),
            }
        )
    return freeze(unwrap(model)), history


def predict_in_batches(
    module: torch.nn.Module, images: torch.Tensor | WorkingImages, device: str, batch_size: int = 256
) -> torch.Tensor:
    """Sigmoid outputs of a frozen critic on ``images`` (CPU tensor or
    :class:`~fairaudit_cafgan.data.WorkingImages`), without gradients."""
    import torch

    outs = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            xb = images[start : start + batch_size].to(device)
            outs.append(torch.sigmoid(module(xb)).cpu())
    return torch.cat(outs) if outs else torch.zeros(0)
