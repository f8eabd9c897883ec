"""Loading a Stable Diffusion pipeline from a local folder (never from a hub) into components."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fairaudit import PluginError
from fairaudit_diffusion.tiny import ensure_tiny_pipeline, parse_tiny

if TYPE_CHECKING:
    import torch


class ModelDirError(PluginError, FileNotFoundError):
    """``model_dir`` is not a local folder holding a diffusers pipeline."""


def resolve_model_dir(model_dir: str | os.PathLike[str]) -> Path:
    """The local pipeline folder of ``model_dir``; ``tiny://N`` builds a random test pipeline.

    Raises
    ------
    ModelDirError
        When the folder or its ``model_index.json`` is missing (nothing is ever downloaded).
    """
    text = str(model_dir).strip()
    if not text:
        raise ModelDirError(
            "sd_counterfactual needs params.model_dir: a local folder holding a diffusers Stable "
            "Diffusion pipeline saved with save_pretrained "
            "(or 'tiny://32' for a random test pipeline)"
        )
    tiny = parse_tiny(text)
    if tiny is not None:
        return ensure_tiny_pipeline(*tiny)
    path = Path(text).expanduser()
    if not (path / "model_index.json").is_file():
        why = "does not exist" if not path.exists() else "has no model_index.json"
        raise ModelDirError(
            f"diffusers pipeline folder {str(path)!r} {why}. fairaudit-diffusion never downloads "
            "weights: on a machine with network access run "
            "StableDiffusionPipeline.from_pretrained('<hub id>').save_pretrained('<folder>') "
            "(SD v1.5 for PRISM), copy the folder here and set params.model_dir to it; "
            "'tiny://32' gives a tiny random pipeline for tests"
        )
    return path


@dataclass
class SDComponents:
    """The parts of a Stable Diffusion pipeline that training and editing use."""

    vae: Any
    text_encoder: Any
    tokenizer: Any
    unet: Any
    scheduler: Any  #: DDIMScheduler (sampling, inversion)
    train_scheduler: Any  #: DDPMScheduler (noise schedule of fine-tuning)
    source: Path
    device: str = "cpu"
    _text_cache: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_resolution(self) -> int:
        """The resolution the UNet was trained at (512 for SD v1.5)."""
        size = self.unet.config.sample_size
        size = size[0] if isinstance(size, list | tuple) else size
        return int(size) * self.vae_scale_factor

    @property
    def resolution_multiple(self) -> int:
        """Resolutions must be multiples of this (VAE and UNet downsampling)."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    def to(self, device: str) -> SDComponents:
        for module in (self.vae, self.text_encoder, self.unet):
            module.to(device)
        self.device = device
        self._text_cache.clear()
        return self

    def encode_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """CLIP hidden states ``(n, L, D)`` of ``prompts`` (frozen encoder; cached per prompt)."""
        import torch

        missing = sorted({p for p in prompts if p not in self._text_cache})
        if missing:
            tokens = self.tokenizer(
                list(missing),
                padding="max_length",
                truncation=True,
                max_length=self.tokenizer.model_max_length,
                return_tensors="pt",
            )
            with torch.no_grad():
                hidden = self.text_encoder(tokens.input_ids.to(self.device))[0]
            for prompt, h in zip(missing, hidden, strict=True):
                self._text_cache[prompt] = h.detach()
        return torch.stack([self._text_cache[p] for p in prompts])

    def latent_distribution(
        self, pixels: torch.Tensor, batch_size: int = 16
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled mean and std of the VAE posterior of ``pixels`` in [-1, 1]."""
        import torch

        means, stds = [], []
        with torch.no_grad():
            for start in range(0, len(pixels), batch_size):
                dist = self.vae.encode(
                    pixels[start : start + batch_size].to(self.device)
                ).latent_dist
                means.append(dist.mean * self.scaling_factor)
                stds.append(dist.std * self.scaling_factor)
        return torch.cat(means), torch.cat(stds)

    def encode(self, pixels: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """Deterministic (posterior mean) scaled latents of ``pixels`` in [-1, 1]."""
        return self.latent_distribution(pixels, batch_size)[0]

    def decode(self, latents: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """Pixels in [-1, 1] of scaled latents."""
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(latents), batch_size):
                z = latents[start : start + batch_size].to(self.device) / self.scaling_factor
                out.append(self.vae.decode(z).sample)
        return torch.cat(out)


def load_components(model_dir: str | os.PathLike[str], device: str = "cpu") -> SDComponents:
    """Load the pipeline in ``model_dir`` offline; VAE and text encoder frozen, in eval mode."""
    from diffusers import DDIMScheduler, DDPMScheduler, StableDiffusionPipeline

    path = resolve_model_dir(model_dir)
    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            str(path), local_files_only=True, safety_checker=None, requires_safety_checker=False
        )
    except Exception as exc:  # a partial or foreign folder: say which and why
        raise ModelDirError(
            f"could not load a Stable Diffusion pipeline from {str(path)!r}: {exc}"
        ) from exc
    for module in (pipe.vae, pipe.text_encoder):
        module.requires_grad_(False)
        module.eval()
    pipe.unet.eval()
    components = SDComponents(
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=pipe.unet,
        scheduler=DDIMScheduler.from_config(pipe.scheduler.config, clip_sample=False),
        train_scheduler=DDPMScheduler.from_config(pipe.scheduler.config),
        source=path,
    )
    return components.to(device)
