"""A multilayer perceptron on feature vectors (e.g. foundation-model embeddings)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fairaudit.builtin.models.torch_classifier import TorchBinaryClassifier

if TYPE_CHECKING:
    import torch


class MLPModel(TorchBinaryClassifier):
    """MLP probe/classifier: Linear-ReLU-Dropout blocks, one logit."""

    name = "mlp"
    description = "Multilayer perceptron (torch) on features; early stopping on a validation split."

    def __init__(
        self,
        *,
        hidden_dims: list[int] = [128, 32],  # noqa: B006 - stored, never mutated
        dropout: float = 0.2,
        max_epochs: int = 50,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        patience: int = 5,
        val_fraction: float = 0.15,
        device: str = "auto",
        random_state: int = 0,
    ):
        self.hidden_dims = hidden_dims
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.val_fraction = val_fraction
        self.device = device
        self.random_state = random_state

    def build_module(self, input_shape: tuple[int, ...]) -> torch.nn.Module:
        from torch import nn

        layers: list[nn.Module] = [nn.Flatten()]
        width = int(sum(input_shape) if len(input_shape) == 1 else _prod(input_shape))
        for hidden in self.hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(self.dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        return nn.Sequential(*layers)

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{"hidden_dims": [8], "max_epochs": 3, "device": "cpu"}]


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out
