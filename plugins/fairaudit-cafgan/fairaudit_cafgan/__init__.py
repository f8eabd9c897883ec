"""CAF-GAN for fairaudit: a conditional WGAN-GP for chest radiographs with a differentiable
fairness critic (soft TPR gap of a frozen diagnostic CNN) and a clinical critic (lung
plausibility through a frozen U-Net).  torch is imported only when a model is trained."""

from fairaudit_cafgan.generator import CAFGAN
from fairaudit_cafgan.losses import (
    clinical_loss,
    reference_stats,
    soft_mask_statistics,
    soft_tpr_gap,
)
from fairaudit_cafgan.plausibility import lung_plausibility, plausibility_reference

__version__ = "0.1.0"

__all__ = [
    "CAFGAN",
    "clinical_loss",
    "lung_plausibility",
    "plausibility_reference",
    "reference_stats",
    "soft_mask_statistics",
    "soft_tpr_gap",
]
