"""fairaudit-alphashift: latent alpha-shift explanations and mitigation for fairaudit."""

from fairaudit_alphashift.debiaser import AlphaShiftDebiaser

__version__ = "0.1.0"

__all__ = ["AlphaShiftDebiaser", "__version__"]
