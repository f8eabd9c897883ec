"""Built-in downstream classifiers: logistic regression and MLP on features, a small CNN on images,
and ``torch_checkpoint``, a trained network the user brings."""

from __future__ import annotations

from fairaudit.builtin.models.cnn import SmallCNN
from fairaudit.builtin.models.logistic import LogisticModel
from fairaudit.builtin.models.mlp import MLPModel
from fairaudit.builtin.models.torch_checkpoint import TorchCheckpoint
from fairaudit.hookspecs import hookimpl
from fairaudit.registry import Registry


@hookimpl
def fairaudit_register_models(registry: Registry) -> None:
    """Register the built-in models."""
    for cls in (LogisticModel, MLPModel, SmallCNN, TorchCheckpoint):
        registry.add(cls)
