"""Learning-rate schedules with linear warm-up, as a pure function of the optimiser step.

The factor multiplies the base learning rate; it depends only on the step, so a resumed
fine-tune needs no scheduler state (the step is saved with the training state).
"""

from __future__ import annotations

import math
from typing import Literal

LRSchedule = Literal["constant", "linear", "cosine"]
SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine")


def check_schedule(schedule: str, warmup_steps: int) -> None:
    """Raise ``ValueError`` for an unknown schedule or a negative warm-up."""
    if schedule not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if warmup_steps < 0:
        raise ValueError(f"lr_warmup_steps must be >= 0, got {warmup_steps}")


def lr_factor(step: int, *, schedule: LRSchedule = "constant", warmup_steps: int = 0, total_steps: int = 1) -> float:
    """Multiplier of the base learning rate at 0-based optimiser step ``step``.

    Warm-up: ``(step + 1) / warmup_steps`` for the first ``warmup_steps`` steps (never 0, so
    no step is wasted), reaching 1 at step ``warmup_steps - 1``. Afterwards, with
    ``p = (step - warmup_steps) / (total_steps - warmup_steps)`` in [0, 1):
    ``constant`` 1, ``linear`` ``1 - p``, ``cosine`` ``(1 + cos(pi p)) / 2``.
    """
    check_schedule(schedule, warmup_steps)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    p = min(1.0, (step - warmup_steps) / span)
    if schedule == "linear":
        return 1.0 - p
    return 0.5 * (1.0 + math.cos(math.pi * p))
