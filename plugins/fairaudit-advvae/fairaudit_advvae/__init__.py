"""fairaudit-advvae: adversarial VAE debiasing of foundation-model embeddings."""

from fairaudit_advvae.debiaser import AdversarialVAEDebiaser

__version__ = "0.1.0"
__all__ = ["AdversarialVAEDebiaser", "__version__"]
