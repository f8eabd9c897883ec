"""The four networks of CAF-GAN: conditional generator, projection critic, and the two
frozen critics (diagnostic CNN, lung-segmentation U-Net).

Images enter every network in ``[0, 1]``; the generator ends in a sigmoid.  Conditions are
one integer per sample, ``c = y * n_groups + group``.  This module imports torch at top
level; the plugin imports it lazily (only inside ``fit``/``generate``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Image sizes the generator and critic are built for (powers of two from a 4x4 start).
SUPPORTED_SIZES = (32, 64, 128)


def n_resamplings(image_size: int) -> int:
    """Number of x2 up/down-samplings between 4x4 and ``image_size``."""
    if image_size not in SUPPORTED_SIZES:
        raise ValueError(f"image_size must be one of {SUPPORTED_SIZES}, got {image_size}")
    return int(math.log2(image_size // 4))


def _channels(base: int, level: int, cap: int = 8) -> int:
    """Channel count at ``level`` steps away from full resolution (doubling, capped)."""
    return base * min(2**level, cap)


class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector to unit RMS (ProGAN); no batch statistics,
    so generation is identical for one sample or many."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class ConditionalGenerator(nn.Module):
    """``G(z, c)``: z and a learned embedding of the condition -> 4x4 map -> upsampling
    blocks (nearest x2, 3x3 conv, PixelNorm, LeakyReLU) -> 3x3 conv -> sigmoid image."""

    def __init__(
        self,
        z_dim: int,
        n_conditions: int,
        image_size: int,
        base_channels: int,
        channels_out: int = 1,
        embed_dim: int = 32,
    ):
        super().__init__()
        self.z_dim, self.image_size = z_dim, image_size
        n_up = n_resamplings(image_size)
        self.embed = nn.Embedding(n_conditions, embed_dim)
        c0 = _channels(base_channels, n_up)
        self.project = nn.Linear(z_dim + embed_dim, c0 * 16)
        self.start_channels = c0
        blocks: list[nn.Module] = [PixelNorm(), nn.LeakyReLU(0.2)]
        c_in = c0
        for level in reversed(range(n_up)):
            c_out = _channels(base_channels, level)
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c_in, c_out, 3, padding=1),
                PixelNorm(),
                nn.LeakyReLU(0.2),
            ]
            c_in = c_out
        blocks += [nn.Conv2d(c_in, channels_out, 3, padding=1)]
        self.body = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat([z, self.embed(c)], dim=1))
        h = h.view(len(z), self.start_channels, 4, 4)
        return torch.sigmoid(self.body(h))


class ProjectionCritic(nn.Module):
    """WGAN critic with a projection head (Miyato & Koyama, 2018):
    ``D(x, c) = w . phi(x) + <embed(c), phi(x)>``.  No batch normalisation (the gradient
    penalty is per sample)."""

    def __init__(self, n_conditions: int, image_size: int, base_channels: int, channels_in: int = 1):
        super().__init__()
        n_down = n_resamplings(image_size)
        layers: list[nn.Module] = [
            nn.Conv2d(channels_in, base_channels, 3, padding=1),
            nn.LeakyReLU(0.2),
        ]
        c_in = base_channels
        for level in range(1, n_down + 1):
            c_out = _channels(base_channels, level)
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.Flatten())
        n_features = c_in * 16
        self.head = nn.Linear(n_features, 1)
        self.embed = nn.Embedding(n_conditions, n_features)
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.features(x * 2.0 - 1.0)
        return self.head(h).squeeze(1) + (self.embed(c) * h).sum(dim=1)


class DiagnosticCNN(nn.Module):
    """The fairness critic: a small CNN giving one disease logit per image (average and
    max pooling, so that a small focal finding is not averaged away)."""

    def __init__(self, image_size: int, base_channels: int, channels_in: int = 1):
        super().__init__()
        n_blocks = max(2, n_resamplings(image_size) - 1)
        layers: list[nn.Module] = []
        c_in = channels_in
        for level in range(n_blocks):
            c_out = _channels(base_channels, level)
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x * 2.0 - 1.0)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.head(pooled).squeeze(1)


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class LungUNet(nn.Module):
    """The clinical critic: a small U-Net giving one lung logit per pixel."""

    def __init__(self, base_channels: int, depth: int = 3, channels_in: int = 1):
        super().__init__()
        self.depth = depth
        self.down = nn.ModuleList()
        c_in = channels_in
        widths = [_channels(base_channels, level) for level in range(depth + 1)]
        for level in range(depth):
            self.down.append(_double_conv(c_in, widths[level]))
            c_in = widths[level]
        self.bottom = _double_conv(c_in, widths[depth])
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for level in reversed(range(depth)):
            self.up.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            self.merge.append(_double_conv(2 * widths[level], widths[level]))
        self.out = nn.Conv2d(widths[0], 1, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x * 2.0 - 1.0
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottom(h)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            h = merge(torch.cat([up(h), skip], dim=1))
        return self.out(h).squeeze(1)


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no parameter gradients: a critic that passes gradients to its *input*
    (the generated images) but never learns from the generator's loss."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
