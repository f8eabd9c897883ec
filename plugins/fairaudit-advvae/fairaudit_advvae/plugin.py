"""Registers :class:`~fairaudit_advvae.debiaser.AdversarialVAEDebiaser` with fairaudit."""

from fairaudit import Registry, hookimpl
from fairaudit_advvae.debiaser import AdversarialVAEDebiaser


@hookimpl
def fairaudit_register_debiasers(registry: Registry) -> None:
    registry.add(AdversarialVAEDebiaser)
