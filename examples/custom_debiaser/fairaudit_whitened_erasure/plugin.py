"""Entry point module: registers the debiaser through fairaudit's hook."""

from fairaudit import Registry, hookimpl
from fairaudit_whitened_erasure.debiaser import WhitenedErasure


@hookimpl
def fairaudit_register_debiasers(registry: Registry) -> None:
    registry.add(WhitenedErasure)
