"""The network, losses and augmentation of the alpha-shift autoencoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fairaudit_alphashift.augment import random_erase
from fairaudit_alphashift.losses import kl_divergence, ssim, ssim_map, vae_loss
from fairaudit_alphashift.model import (
    PlainConvAE,
    ShuffleVAE,
    channel_shuffle,
    count_parameters,
)


def test_default_model_has_about_1_4_million_parameters_at_128px() -> None:
    n = count_parameters(ShuffleVAE(image_size=128))
    assert 1.4e6 * 0.8 <= n <= 1.4e6 * 1.2, n


def test_plain_reference_is_of_similar_size() -> None:
    ratio = count_parameters(PlainConvAE(128)) / count_parameters(ShuffleVAE(128))
    assert 0.9 < ratio < 1.1, ratio


@pytest.mark.parametrize("size", [16, 32, 64, 256])
def test_shapes_round_trip(size: int) -> None:
    model = ShuffleVAE(size, latent_dim=6, width=0.125, depth=0.5).eval()
    x = torch.rand(3, 1, size, size)
    with torch.no_grad():
        recon, mu, logvar = model(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (3, 6)
    assert float(recon.min()) >= 0.0 and float(recon.max()) <= 1.0
    assert model.weight_map().shape == (1, 1, size, size)


@pytest.mark.parametrize("size", [8, 48, 100])
def test_bad_image_size_is_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        ShuffleVAE(size)


def test_channel_shuffle_interleaves_groups() -> None:
    x = torch.arange(6.0).view(1, 6, 1, 1)
    out = channel_shuffle(x, groups=2).flatten().tolist()
    assert out == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_weight_map_starts_at_one_and_no_attention_gives_none() -> None:
    assert torch.allclose(ShuffleVAE(16, 4, 0.125).weight_map(), torch.ones(1, 1, 16, 16))
    assert ShuffleVAE(16, 4, 0.125, attention=False).weight_map() is None


def test_ssim_properties() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 32, 32, generator=g)
    assert torch.allclose(ssim(x, x), torch.ones(4), atol=1e-5)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    noisier = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert bool((ssim(noisy, x) < 0.99).all()) and bool((ssim(noisier, x) < ssim(noisy, x)).all())
    assert torch.allclose(ssim(noisy, x), ssim(x, noisy), atol=1e-6)
    assert ssim_map(x, noisy).shape == x.shape
    # structure inverted -> strongly negative correlation term
    assert float(ssim(1 - x, x).mean()) < 0.1


def test_kl_is_zero_at_the_prior_and_positive_elsewhere() -> None:
    zeros = torch.zeros(2, 5)
    assert torch.allclose(kl_divergence(zeros, zeros), torch.zeros(2))
    assert bool((kl_divergence(torch.ones(2, 5), zeros) > 0).all())
    # closed form for one dimension: 0.5 (mu^2 + s^2 - 1 - log s^2)
    mu, logvar = torch.tensor([[0.5]]), torch.tensor([[np.log(2.0)]], dtype=torch.float32)
    expected = 0.5 * (0.25 + 2.0 - 1.0 - np.log(2.0))
    assert float(kl_divergence(mu, logvar)) == pytest.approx(expected, rel=1e-5)


def test_attention_penalty_pulls_mean_weight_to_one() -> None:
    x = torch.rand(2, 1, 16, 16)
    kw = {"beta": 0.0, "ssim_weight": 0.0, "mse_weight": 0.0, "attention_penalty": 1.0}
    mu = torch.zeros(2, 3)
    _, at_one = vae_loss(x, x, mu, mu, torch.ones(1, 1, 16, 16), **kw)
    _, at_half = vae_loss(x, x, mu, mu, torch.full((1, 1, 16, 16), 0.5), **kw)
    assert at_one.total == pytest.approx(0.0) and at_half.total == pytest.approx(0.25)


def test_weight_map_weights_the_reconstruction_error() -> None:
    x = torch.zeros(1, 1, 16, 16)
    recon = x.clone()
    recon[..., :8] = 1.0  # error only in the left half
    kw = {"beta": 0.0, "ssim_weight": 0.0, "mse_weight": 1.0, "attention_penalty": 0.0}
    mu = torch.zeros(1, 3)
    left_off = torch.ones(1, 1, 16, 16)
    left_off[..., :8] = 0.0
    _, plain = vae_loss(recon, x, mu, mu, None, **kw)
    _, masked = vae_loss(recon, x, mu, mu, left_off, **kw)
    assert plain.mse == pytest.approx(0.5) and masked.mse == pytest.approx(0.0)


def test_random_erase_is_seeded_and_leaves_input_alone() -> None:
    x = torch.full((8, 1, 32, 32), 0.5)
    a = random_erase(x, 1.0, torch.Generator().manual_seed(3))
    b = random_erase(x, 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert bool((x == 0.5).all()), "input was modified"
    changed = (a != 0.5).flatten(1).float().mean(1)
    assert bool((changed > 0.005).all()) and bool((changed < 0.5).all())
    assert torch.equal(random_erase(x, 0.0, torch.Generator()), x)
