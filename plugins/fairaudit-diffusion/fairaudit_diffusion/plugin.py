"""Entry-point module: registers the diffusion generator (no torch or diffusers imported here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import fairaudit

if TYPE_CHECKING:
    from fairaudit import Registry


@fairaudit.hookimpl
def fairaudit_register_generators(registry: Registry) -> None:
    """Register :class:`~fairaudit_diffusion.generator.DiffusionCounterfactuals`."""
    from fairaudit_diffusion.generator import DiffusionCounterfactuals

    registry.add(DiffusionCounterfactuals)
