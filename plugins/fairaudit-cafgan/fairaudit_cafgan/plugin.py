"""Entry point of the ``fairaudit-cafgan`` distribution: registers the ``cafgan`` generator."""

from __future__ import annotations

from fairaudit import Registry, hookimpl


@hookimpl
def fairaudit_register_generators(registry: Registry) -> None:
    """Register :class:`~fairaudit_cafgan.generator.CAFGAN` as ``cafgan``."""
    from fairaudit_cafgan.generator import CAFGAN

    registry.add(CAFGAN)
