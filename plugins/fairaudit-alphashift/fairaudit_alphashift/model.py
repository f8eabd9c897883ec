"""A lightweight ShuffleNet-style convolutional beta-VAE with a learned attention weight map.

Building blocks follow ShuffleNet (Zhang et al., 2018): pointwise *group* convolutions, a
channel shuffle so information crosses groups, and depthwise 3x3 convolutions.  The encoder
halves the resolution down to 4x4, a small pointwise "neck" feeds two linear heads (mean and
log-variance); the decoder mirrors it with nearest-neighbour upsampling units.  At 128 px with
``width=1`` and ``latent_dim=128`` the network has about 1.4 M parameters.

This module imports torch at top level; the debiaser imports it lazily.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

#: Stage output channels at ``width=1`` (encoder after the stem; the decoder mirrors them).
BASE_CHANNELS = (112, 224, 448, 896)
#: Extra stride-1 units after each encoder stage's stride-2 unit (ShuffleNet uses 3, 7, 3).
ENC_REPEATS = (1, 3, 5, 3)
#: Extra stride-1 units after each decoder upsampling unit (coarse to fine).
DEC_REPEATS = (2, 2, 1, 0)
STEM_CHANNELS = 24
NECK_CHANNELS = 64


def scaled_channels(base: int, width: float, groups: int) -> int:
    """``base * width`` rounded up to a multiple of ``groups`` (at least ``2 * groups``)."""
    value = max(round(base * width), 2 * groups)
    return int(math.ceil(value / groups) * groups)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups (ShuffleNet's shuffle)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def _gconv(c_in: int, c_out: int, groups: int) -> nn.Conv2d:
    g = groups if c_in % groups == 0 and c_out % groups == 0 else 1
    return nn.Conv2d(c_in, c_out, kernel_size=1, groups=g, bias=False)


class ShuffleUnit(nn.Module):
    """Bottleneck: group 1x1 -> shuffle -> depthwise 3x3 (stride 1 or 2) -> group 1x1.

    Stride 1 adds the input (residual); stride 2 concatenates a 3x3 average-pooled copy of the
    input, so the output has ``c_out`` channels either way.
    """

    def __init__(self, c_in: int, c_out: int, groups: int, stride: int = 1):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError("stride must be 1 or 2")
        if stride == 1 and c_in != c_out:
            raise ValueError("a stride-1 unit keeps the channel count")
        self.stride, self.groups = stride, groups
        branch_out = c_out - c_in if stride == 2 else c_out
        if branch_out <= 0:
            raise ValueError("a stride-2 unit must widen the channels")
        mid = scaled_channels(c_out // 4, 1.0, groups)
        self.reduce = _gconv(c_in, mid, groups)
        self.bn1 = nn.BatchNorm2d(mid)
        self.depthwise = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.expand = _gconv(mid, branch_out, groups)
        self.bn3 = nn.BatchNorm2d(branch_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.reduce(x)))
        out = channel_shuffle(out, self.groups) if out.shape[1] % self.groups == 0 else out
        out = self.bn2(self.depthwise(out))
        out = self.bn3(self.expand(out))
        if self.stride == 1:
            return F.relu(out + x)
        return F.relu(torch.cat([F.avg_pool2d(x, 3, stride=2, padding=1), out], dim=1))


class UpUnit(nn.Module):
    """Decoder unit: x2 upsampling with a shuffle bottleneck and a group 1x1 skip.

    The pointwise convolutions, batch norms and ReLUs run *before* the nearest-neighbour
    upsampling: per-pixel maps commute with it exactly (batch statistics included, every
    value is just repeated four times), so this is the same function at a quarter of the cost.
    """

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.groups = groups
        mid = scaled_channels(c_out // 2, 1.0, groups)
        self.reduce = _gconv(c_in, mid, groups)
        self.bn1 = nn.BatchNorm2d(mid)
        self.depthwise = nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.expand = _gconv(mid, c_out, groups)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.skip = _gconv(c_in, c_out, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.reduce(x)))
        out = channel_shuffle(out, self.groups) if out.shape[1] % self.groups == 0 else out
        out = F.interpolate(out, scale_factor=2.0, mode="nearest")
        out = self.bn3(self.expand(self.bn2(self.depthwise(out))))
        skip = F.interpolate(self.skip(x), scale_factor=2.0, mode="nearest")
        return F.relu(out + skip)


def n_downsamplings(image_size: int) -> int:
    """Halvings from ``image_size`` down to a 4x4 map (``image_size`` must be 4 * 2**k, k >= 2)."""
    k = round(math.log2(image_size / 4))
    if image_size < 16 or 4 * 2**k != image_size:
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
    return k


class ShuffleVAE(nn.Module):
    """Convolutional beta-VAE with ShuffleNet units and a learned per-pixel loss-weight map.

    Parameters
    ----------
    image_size:
        Side of the square single-channel input (power of two, >= 16).
    latent_dim:
        Size of the latent code ``z``.
    width:
        Channel multiplier (``1.0`` gives about 1.4 M parameters at 128 px).
    groups:
        Groups of the pointwise convolutions.
    attention:
        Learn the weight map ``W = 2 sigmoid(theta)`` (initialised to 1 everywhere).
    depth:
        Multiplier of the stride-1 units per stage (``0`` keeps only the resampling units;
        handy for tiny test models).
    """

    def __init__(self, image_size: int = 128, latent_dim: int = 128, width: float = 1.0,
                 groups: int = 4, attention: bool = True, depth: float = 1.0):
        super().__init__()
        self.image_size, self.latent_dim, self.groups = image_size, latent_dim, groups
        k = n_downsamplings(image_size)
        stages = [scaled_channels(c, width, groups) for c in BASE_CHANNELS]
        # k halvings: the stem does one, then one stride-2 unit per stage; extra halvings
        # (image_size > 128) reuse the last width, fewer (small images) drop leading stages.
        n_units = k - 1
        if n_units > len(stages):
            widths = (stages + [stages[-1]] * n_units)[:n_units]
        else:
            widths = stages[-n_units:]
        stem = scaled_channels(STEM_CHANNELS, width, groups)
        enc: list[nn.Module] = [nn.Conv2d(1, stem, 3, stride=2, padding=1, bias=False),
                                nn.BatchNorm2d(stem), nn.ReLU(inplace=True)]
        c = stem
        for i, c_out in enumerate(widths):
            c_out = max(c_out, c + groups)
            c_out = int(math.ceil(c_out / groups) * groups)
            enc.append(ShuffleUnit(c, c_out, groups, stride=2))
            base = ENC_REPEATS[len(ENC_REPEATS) - len(widths) + i] if len(widths) <= len(
                ENC_REPEATS) else ENC_REPEATS[min(i, len(ENC_REPEATS) - 1)]
            repeats = round(base * depth)
            enc.extend(ShuffleUnit(c_out, c_out, groups) for _ in range(repeats))
            c = c_out
        neck = scaled_channels(NECK_CHANNELS, width, groups)
        enc += [nn.Conv2d(c, neck, 1, bias=False), nn.BatchNorm2d(neck), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*enc)
        flat = neck * 16
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)
        self.fc_dec = nn.Linear(latent_dim, flat)
        self._neck = neck
        dec: list[nn.Module] = [nn.Conv2d(neck, c, 1, bias=False), nn.BatchNorm2d(c),
                                nn.ReLU(inplace=True)]
        up_widths = [*reversed(widths[:-1]), stem]
        for i, c_out in enumerate(up_widths):
            dec.append(UpUnit(c, c_out, groups))
            repeats = round((DEC_REPEATS[i] if i < len(DEC_REPEATS) else 0) * depth)
            dec.extend(ShuffleUnit(c_out, c_out, groups) for _ in range(repeats))
            c = c_out
        # last x2 by sub-pixel convolution (4 output maps -> pixel shuffle): far cheaper on CPU
        # than a full-resolution convolution with one output channel
        dec += [nn.Conv2d(c, 4, 3, padding=1), nn.PixelShuffle(2)]
        self.decoder = nn.Sequential(*dec)
        self.attention_logits = (
            nn.Parameter(torch.zeros(1, 1, image_size, image_size)) if attention else None
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``q(z | x)``."""
        h = self.encoder(x).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h).clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in ``[0, 1]`` from latent codes."""
        h = self.fc_dec(z).view(-1, self._neck, 4, 4)
        return torch.sigmoid(self.decoder(h))

    def weight_map(self) -> torch.Tensor | None:
        """The learned loss weights ``W`` in ``(0, 2)`` (``None`` without attention)."""
        if self.attention_logits is None:
            return None
        return 2.0 * torch.sigmoid(self.attention_logits)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar


class PlainConvAE(nn.Module):
    """A plain strided-conv autoencoder (no groups, no shuffle): the throughput reference.

    With the default channels it has about as many parameters as :class:`ShuffleVAE` at
    128 px (1.40 M vs 1.39 M)."""

    def __init__(self, image_size: int = 128, latent_dim: int = 128, channels: tuple[int, ...] = (
            24, 48, 96, 128, 128)):
        super().__init__()
        k = n_downsamplings(image_size)
        chans = list(channels[:k]) + [channels[-1]] * max(0, k - len(channels))
        enc: list[nn.Module] = []
        c = 1
        for c_out in chans:
            enc += [nn.Conv2d(c, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out),
                    nn.ReLU(True)]
            c = c_out
        self.encoder = nn.Sequential(*enc)
        self.fc_mu = nn.Linear(c * 16, latent_dim)
        self.fc_dec = nn.Linear(latent_dim, c * 16)
        self._c = c
        dec: list[nn.Module] = []
        for c_out in [*reversed(chans[:-1]), 16]:
            dec += [nn.ConvTranspose2d(c, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out),
                    nn.ReLU(True)]
            c = c_out
        dec.append(nn.Conv2d(c, 1, 3, padding=1))
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu = self.fc_mu(self.encoder(x).flatten(1))
        out = torch.sigmoid(self.decoder(self.fc_dec(mu).view(-1, self._c, 4, 4)))
        return out, mu, torch.zeros_like(mu)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
