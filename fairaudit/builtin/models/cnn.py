"""A small convolutional classifier for grayscale images (e.g. chest radiographs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fairaudit.builtin.models.torch_classifier import TorchBinaryClassifier

if TYPE_CHECKING:
    import torch


class SmallCNN(TorchBinaryClassifier):
    """Conv-BN-ReLU-pool blocks, global average pooling, one logit.

    ``num_workers`` > 0 decodes streamed images (``image_folder`` with ``stream: true``) in
    that many DataLoader worker processes; in-memory images ignore it.
    """

    name = "cnn"
    description = "Small CNN (torch) for images (n, C, H, W); early stopping on a validation split."
    modalities = frozenset({"images"})

    def __init__(
        self,
        *,
        channels: list[int] = [16, 32, 64],  # noqa: B006 - stored, never mutated
        max_epochs: int = 15,
        batch_size: int = 64,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        patience: int = 4,
        val_fraction: float = 0.15,
        device: str = "auto",
        random_state: int = 0,
        num_workers: int = 0,
    ):
        self.channels = channels
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.val_fraction = val_fraction
        self.device = device
        self.random_state = random_state
        self.num_workers = num_workers

    def build_module(self, input_shape: tuple[int, ...]) -> torch.nn.Module:
        from torch import nn

        if len(input_shape) != 3:
            from fairaudit.errors import DataError

            raise DataError(f"cnn expects images (n, C, H, W); got inputs of shape (n, {input_shape})")
        layers: list[nn.Module] = []
        in_ch = int(input_shape[0])
        for ch in self.channels:
            layers += [nn.Conv2d(in_ch, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.ReLU(), nn.MaxPool2d(2)]
            in_ch = ch
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_ch, 1)]
        return nn.Sequential(*layers)

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{"channels": [4, 8], "max_epochs": 2, "device": "cpu"}]
