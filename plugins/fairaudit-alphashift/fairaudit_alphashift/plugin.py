"""Entry point of ``fairaudit-alphashift``: registers the ``alphashift`` debiaser."""

from __future__ import annotations

from fairaudit import Registry, hookimpl
from fairaudit_alphashift.debiaser import AlphaShiftDebiaser


@hookimpl
def fairaudit_register_debiasers(registry: Registry) -> None:
    """Register :class:`~fairaudit_alphashift.debiaser.AlphaShiftDebiaser` as ``alphashift``."""
    registry.add(AlphaShiftDebiaser)
