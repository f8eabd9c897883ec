"""fairaudit-diffusion: PRISM-style language-guided Stable Diffusion counterfactuals.

The generator is registered as ``sd_counterfactual`` through the ``fairaudit`` entry point.
Importing this package does not import torch or diffusers; they load when a model is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from fairaudit_diffusion.generator import DiffusionCounterfactuals

__all__ = ["DiffusionCounterfactuals", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "DiffusionCounterfactuals":
        from fairaudit_diffusion.generator import DiffusionCounterfactuals

        return DiffusionCounterfactuals
    raise AttributeError(f"module 'fairaudit_diffusion' has no attribute {name!r}")
