"""Built-in mitigation baselines: linear erasure (LEACE, mean-difference projection, INLP),
reweighing (pre-processing) and fairlearn's ExponentiatedGradient (in-processing) and
ThresholdOptimizer (post-processing)."""

from __future__ import annotations

from fairaudit.builtin.debiasers.erasure import LeaceEraser, MeanProjection
from fairaudit.builtin.debiasers.fairlearn_mitigations import (
    ExponentiatedGradientMitigation,
    ThresholdOptimizerMitigation,
)
from fairaudit.builtin.debiasers.inlp import INLP
from fairaudit.builtin.debiasers.reweighing import Reweighing
from fairaudit.hookspecs import hookimpl
from fairaudit.registry import Registry


@hookimpl
def fairaudit_register_debiasers(registry: Registry) -> None:
    """Register the built-in debiasers."""
    for cls in (LeaceEraser, MeanProjection, INLP, Reweighing, ExponentiatedGradientMitigation,
                ThresholdOptimizerMitigation):
        registry.add(cls)
