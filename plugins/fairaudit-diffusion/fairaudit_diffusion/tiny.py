"""Tiny random Stable Diffusion pipelines built from configs, for tests and demos only.

Every component is built from a config with random weights (no download, no hub):
a small ``UNet2DConditionModel``, ``AutoencoderKL`` and ``CLIPTextModel``, a word-level
``CLIPTokenizer`` whose vocabulary and merges are generated here, and the DDIM scheduler
of SD v1.5.  The outputs are noise until fine-tuned; use them to exercise code paths.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from fairaudit_diffusion.captions import CaptionBuilder

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

#: ``model_dir`` prefix of the test-only tiny pipeline: ``tiny://32`` or ``tiny://32?seed=1``.
TINY_SCHEME = "tiny://"
#: Bump when the tiny architecture changes, so cached folders are rebuilt.
TINY_FORMAT = 2
#: File a tiny pipeline's folder holds, so its outputs are marked as a plumbing check wherever it lives.
TINY_MARKER = "fairaudit_tiny_pipeline.json"
_TINY_RE = re.compile(r"^tiny://(\d+)(?:\?seed=(\d+))?$")
_EXTRA_WORDS = (
    "normal",
    "no",
    "finding",
    "findings",
    "pleural",
    "effusion",
    "cardiomegaly",
    "of",
    "a",
    "the",
    "and",
    "showing",
    "patient",
    "lungs",
)
_SPECIAL_BOS, _SPECIAL_EOS = "<|startoftext|>", "<|endoftext|>"


def parse_tiny(model_dir: str) -> tuple[int, int] | None:
    """``(image_size, seed)`` of a ``tiny://`` address, ``None`` for any other string."""
    match = _TINY_RE.match(model_dir.strip())
    if match is None:
        if model_dir.strip().startswith(TINY_SCHEME):
            raise ValueError(
                f"bad tiny pipeline address {model_dir!r}; use e.g. 'tiny://32' or "
                "'tiny://32?seed=1'"
            )
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def build_tiny_tokenizer(max_length: int = 48, words: tuple[str, ...] = ()) -> CLIPTokenizer:
    """A byte-level BPE ``CLIPTokenizer`` whose merges make whole tokens of caption words."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {_SPECIAL_BOS: 0, _SPECIAL_EOS: 1}
    for char in sorted(ByteLevel.alphabet()):
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    all_words = sorted(set(CaptionBuilder().vocabulary()) | set(_EXTRA_WORDS) | set(words))
    for word in all_words:
        symbols = list(word)
        symbols[-1] += "</w>"
        current = symbols[0]
        for symbol in symbols[1:]:
            pair = (current, symbol)
            if pair not in seen:
                seen.add(pair)
                merges.append(pair)
            current += symbol
            vocab.setdefault(current, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def build_tiny_pipeline(
    path: str | os.PathLike[str],
    image_size: int = 32,
    seed: int = 0,
    *,
    unet_channels: tuple[int, int] = (32, 64),
) -> Path:
    """Build a tiny random SD pipeline and ``save_pretrained`` it to ``path``.

    Parameters
    ----------
    path:
        Destination folder (created; existing files are overwritten).
    image_size:
        Native resolution in pixels; a multiple of 8 (VAE factor 4, one UNet downsampling).
    seed:
        Seed of the random weights.
    unet_channels:
        Widths of the UNet's two levels (multiples of 16); larger values for benchmarks.

    Returns
    -------
    Path
        ``path``, loadable offline with
        ``StableDiffusionPipeline.from_pretrained(path, local_files_only=True)``.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    if image_size < 8 or image_size % 8:
        raise ValueError(f"image_size must be a positive multiple of 8, got {image_size}")
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32),
        sample_size=image_size,
    )
    torch.manual_seed(seed + 2)
    unet = UNet2DConditionModel(
        sample_size=image_size // 4,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=tuple(unet_channels),
        norm_num_groups=16,
        cross_attention_dim=32,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    )
    vae.register_to_config(scaling_factor=_unit_variance_scale(vae, image_size, seed))
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out)
    marker = {
        "image_size": image_size,
        "seed": seed,
        "unet_channels": list(unet_channels),
        "note": "random weights built by fairaudit_diffusion.tiny: a plumbing check, never a result",
    }
    (out / TINY_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return out


def is_tiny_pipeline(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a tiny random pipeline built by :func:`build_tiny_pipeline`."""
    return (Path(path) / TINY_MARKER).is_file()


def _unit_variance_scale(vae: object, image_size: int, seed: int) -> float:
    """Latent scale giving unit-variance latents on smooth random images (SD v1.5: 0.18215)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(16, 1, 4, 4, generator=g)
    images = F.interpolate(
        coarse, size=(image_size, image_size), mode="bilinear", align_corners=False
    )
    with torch.no_grad():
        latents = vae.encode(images.repeat(1, 3, 1, 1) * 2 - 1).latent_dist.mean  # type: ignore[attr-defined]
    return float(1.0 / max(float(latents.std()), 1e-6))


def ensure_tiny_pipeline(
    image_size: int = 32, seed: int = 0, cache_dir: Path | None = None
) -> Path:
    """The cached folder of a tiny pipeline, built once per (size, seed) in a temp folder."""
    root = Path(cache_dir or os.environ.get("FAIRAUDIT_DIFFUSION_CACHE") or tempfile.gettempdir())
    final = root / "fairaudit-diffusion" / f"tiny-v{TINY_FORMAT}-{image_size}px-seed{seed}"
    if (final / "model_index.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=final.parent))
    try:
        build_tiny_pipeline(staging, image_size=image_size, seed=seed)
        try:
            staging.rename(final)
        except OSError:  # another process finished first
            if not (final / "model_index.json").is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final
