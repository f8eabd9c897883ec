"""The alternative editor: diffusers' ``StableDiffusionImg2ImgPipeline`` on the loaded components.

SDEdit-style: the image's latent is noised to ``strength`` of the schedule and denoised under
the *target* caption with classifier-free guidance (the source caption is not used). The
pipeline is loaded from the same local folder with every component passed in, so the
fine-tuned UNet (and its LoRA adapters or EMA weights) is the one that edits; nothing is
loaded twice and nothing is downloaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from fairaudit_diffusion.pipeline import SDComponents


def load_img2img_pipeline(components: SDComponents, *, progress: bool = False) -> Any:
    """``StableDiffusionImg2ImgPipeline.from_pretrained(components.source)`` reusing ``components``."""
    from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline

    from fairaudit_diffusion.pipeline import ModelDirError

    try:
        pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
            str(components.source),
            local_files_only=True,
            vae=components.vae,
            text_encoder=components.text_encoder,
            tokenizer=components.tokenizer,
            unet=components.unet,
            scheduler=DDIMScheduler.from_config(components.scheduler.config),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    except Exception as exc:
        raise ModelDirError(
            f"could not build StableDiffusionImg2ImgPipeline from {str(components.source)!r}: {exc}"
        ) from exc
    pipe.set_progress_bar_config(disable=not progress)
    return pipe


def img2img_latents(
    pipe: Any,
    pixels: torch.Tensor,
    target: torch.Tensor,
    uncond: torch.Tensor,
    *,
    strength: float,
    num_inference_steps: int,
    guidance_scale: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Edited scaled latents of ``pixels`` ``(n, 3, R, R)`` in [0, 1] under ``target`` embeddings."""
    out = pipe(
        prompt_embeds=target,
        negative_prompt_embeds=uncond,
        image=pixels,
        strength=strength,
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        generator=generator,
        output_type="latent",
    )
    return out.images
