"""An exponential moving average (EMA) of trainable parameters.

``shadow = decay * shadow + (1 - decay) * param`` after every optimiser step, starting from
the parameters' values when the EMA is created (a fixed decay, no bias correction). The
averaged weights are smoother than the last iterate; :meth:`EMA.swapped_in` puts them into
the model for sampling or editing and restores the raw weights afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class EMA:
    """EMA of ``params`` with ``decay`` in [0, 1) (kept in float32)."""

    def __init__(self, params: Sequence[torch.nn.Parameter], decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {decay}")
        self.params = list(params)
        self.decay = float(decay)
        self.shadow = [p.detach().float().clone() for p in self.params]

    def update(self) -> None:
        """Move the shadow one step toward the current parameters."""
        import torch

        with torch.no_grad():
            for s, p in zip(self.shadow, self.params, strict=True):
                s.mul_(self.decay).add_(p.detach().float(), alpha=1.0 - self.decay)

    def copy_to_params(self) -> None:
        """Overwrite the parameters with the averaged weights."""
        import torch

        with torch.no_grad():
            for s, p in zip(self.shadow, self.params, strict=True):
                p.copy_(s.to(p.dtype))

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Inside the block the parameters hold the EMA weights; the raw ones come back after."""
        import torch

        raw = [p.detach().clone() for p in self.params]
        self.copy_to_params()
        try:
            yield
        finally:
            with torch.no_grad():
                for r, p in zip(raw, self.params, strict=True):
                    p.copy_(r)
