"""The learning-rate schedule and the EMA, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest
from fairaudit_diffusion.schedule import lr_factor


def test_warmup_then_constant() -> None:
    got = [lr_factor(s, schedule="constant", warmup_steps=4, total_steps=10) for s in range(6)]
    assert got == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    assert lr_factor(0) == 1.0  # no warm-up: the base rate from the first step


def test_linear_decay_after_warmup() -> None:
    # warm-up 2 of 10 steps, then 1 - (s - 2) / 8
    got = [lr_factor(s, schedule="linear", warmup_steps=2, total_steps=10) for s in range(10)]
    assert got == pytest.approx([0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125])


def test_cosine_decay_after_warmup() -> None:
    got = [lr_factor(s, schedule="cosine", warmup_steps=0, total_steps=4) for s in range(4)]
    expected = [0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)]
    assert got == pytest.approx(expected)
    assert got == pytest.approx([1.0, 0.5 + 0.5 * math.sqrt(0.5), 0.5, 0.5 - 0.5 * math.sqrt(0.5)])
    assert lr_factor(3, schedule="cosine", warmup_steps=3, total_steps=7) == pytest.approx(1.0)
    assert lr_factor(5, schedule="cosine", warmup_steps=3, total_steps=7) == pytest.approx(0.5)
    assert lr_factor(50, schedule="cosine", warmup_steps=3, total_steps=7) == pytest.approx(0.0)


def test_schedule_errors_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_factor(0, schedule="step")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lr_warmup_steps"):
        lr_factor(0, warmup_steps=-1)


def test_ema_tracks_a_known_sequence() -> None:
    import torch
    from fairaudit_diffusion.ema import EMA

    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    ema = EMA([p], decay=0.5)
    # s_t = 0.5 s_{t-1} + 0.5 x_t from s_0 = p's initial value
    expected = [torch.tensor([1.0, -2.0])]
    for x in ([3.0, 0.0], [5.0, 4.0], [-1.0, 2.0]):
        with torch.no_grad():
            p.copy_(torch.tensor(x))
        ema.update()
        expected.append(0.5 * expected[-1] + 0.5 * torch.tensor(x))
    assert torch.allclose(ema.shadow[0], expected[-1])
    assert torch.allclose(ema.shadow[0], torch.tensor([1.25, 1.75]))  # (1/8, 1/8, 1/4, 1/2) weights
    with ema.swapped_in():
        assert torch.equal(p.detach(), ema.shadow[0])
    assert torch.equal(p.detach(), torch.tensor([-1.0, 2.0]))  # raw weights back
    ema.copy_to_params()
    assert torch.equal(p.detach(), torch.tensor([1.25, 1.75]))
    with pytest.raises(ValueError, match="ema_decay"):
        EMA([p], decay=1.0)
