"""The diagnostic critic's cell-balanced weights (``critic_balance``)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from fairaudit_cafgan.critics import (  # noqa: E402
    CriticSettings,
    cell_balanced_weights,
    predict_in_batches,
    train_diagnostic_classifier,
)


def test_cell_balanced_weights_equalise_label_by_group_cells():
    y = torch.tensor([1, 0, 0, 0, 1, 1, 1, 0])
    g = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    w = cell_balanced_weights(y, g)
    assert torch.isclose(w.mean(), torch.tensor(1.0))
    totals = {(int(a), int(b)): 0.0 for a, b in zip(y, g, strict=True)}
    for a, b, v in zip(y, g, w, strict=True):
        totals[(int(a), int(b))] += float(v)
    assert max(totals.values()) == pytest.approx(min(totals.values()))


def test_cell_balanced_weights_skip_empty_cells():
    w = cell_balanced_weights(torch.tensor([0, 0, 1]), torch.tensor([0, 0, 0]))
    assert torch.allclose(w, torch.tensor([0.75, 0.75, 1.5]))


def test_balanced_critic_does_not_learn_the_group_base_rate(torch_single_thread):
    """Images show only the group (a bright left half for group 1) and no finding; the
    label's prevalence is 0.2 in group 0 and 0.8 in group 1.  Trained plainly, the CNN scores
    group 1 higher (a prior); with cell-balanced weights both groups sit near 1/2."""
    gen = torch.Generator().manual_seed(0)
    n = 256
    g = torch.arange(n) % 2
    y = (torch.rand(n, generator=gen) < torch.where(g == 1, 0.8, 0.2)).long()
    images = torch.rand(n, 1, 32, 32, generator=gen) * 0.2
    images[g == 1, :, :, :16] += 0.6
    settings = CriticSettings(epochs=8, batch_size=32, lr=5e-3, device="cpu", seed=0, augment=False)
    gaps = {}
    for balanced in (False, True):
        net, _ = train_diagnostic_classifier(
            images,
            y,
            image_size=32,
            base_channels=4,
            settings=settings,
            weights=cell_balanced_weights(y, g) if balanced else None,
        )
        p = predict_in_batches(net, images, "cpu")
        gaps[balanced] = float(p[g == 1].mean() - p[g == 0].mean())
    assert gaps[False] > 0.4
    assert abs(gaps[True]) < 0.15
