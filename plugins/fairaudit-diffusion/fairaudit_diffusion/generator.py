"""The ``sd_counterfactual`` generator: PRISM-style language-guided SD counterfactuals.

``fit`` fine-tunes a local Stable Diffusion pipeline's UNet on the audit's images with
captions built from their metadata; ``generate`` samples images from captions of the
requested rows; ``counterfactual`` edits images by changing one phrase of their caption
(e.g. "with support devices" -> "without support devices") through DDIM inversion and
guided denoising.  torch and diffusers are imported only inside methods.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from fairaudit import BaseGenerator, DataError
from fairaudit.training import resolve_device, seed_everything, torch_generator
from fairaudit_diffusion.captions import (
    DEFAULT_FIELDS,
    DEFAULT_TEMPLATE,
    CaptionBuilder,
    canonical_field,
    field_values,
    metadata_frame,
    template_fields,
    value_key,
)
from fairaudit_diffusion.edits import resolve_edit
from fairaudit_diffusion.schedule import check_schedule

if TYPE_CHECKING:
    import torch

    from fairaudit import AuditDataset
    from fairaudit_diffusion.pipeline import SDComponents

_EVAL_ROWS = 32
_EVAL_TIMESTEPS = (100, 300, 500, 700, 900)


class DiffusionCounterfactuals(BaseGenerator):
    """Fine-tune Stable Diffusion on captioned audit images; edit them by editing the caption.

    Parameters
    ----------
    model_dir:
        Local folder of a diffusers Stable Diffusion pipeline saved with ``save_pretrained``
        (SD v1.5 for PRISM). Loaded offline; nothing is downloaded. Test only: ``"tiny://32"``
        builds (once, in the temp folder) a tiny pipeline with *random* weights.
    finetune:
        ``"lora"`` (adapters on the UNet attention), ``"unet"`` (every UNet weight, as PRISM)
        or ``"none"``. The VAE and text encoder are always frozen.
    lora_rank, lora_alpha:
        LoRA rank and scale (``lora_alpha`` defaults to the rank).
    lr, max_steps, batch_size:
        AdamW learning rate, optimiser steps and batch size of fine-tuning.
    resolution:
        Square training/editing resolution (default: the pipeline's native one, 512 for SD v1.5).
    caption_fields:
        Metadata fields the captions describe (default: those of ``label``, ``device``, ``view``,
        ``sex``, ``age_group`` present in the data; ``label`` is the target ``y``).
    caption_template:
        Caption template; ``{fields}`` = the comma-joined phrases, ``{sex}`` etc. one field's
        phrase.
    label_name:
        Name of the positive finding (default: ``dataset.meta["label_name"]`` or ``"disease"``).
    caption_phrases:
        Phrase overrides per field and value, e.g. ``{"device": {"1": "with a pacemaker"}}``.
    field_dropout, caption_dropout:
        Probability of dropping one field's phrase / the whole caption at a training step
        (partial captions let edits work without full metadata; empty ones serve guidance).
    num_inference_steps:
        DDIM steps of a full trajectory (an edit uses ``strength`` of them).
    guidance_scale:
        Classifier-free guidance of generation and of the edit's denoising.
    strength:
        Fraction of the DDIM schedule an edit inverts through (0 = no change, 1 = pure noise).
    blend:
        Pull of every edit step toward the source inversion trajectory (0 = none, 1 = no edit).
    blend_mask:
        ``"none"``: blend everywhere; ``"auto"``: blend only outside an automatic mask where
        the source and target captions disagree (DiffEdit-style).
    mask_threshold:
        Threshold of the automatic mask, relative to its per-image maximum.
    keep_residual:
        Add back what the VAE cannot reconstruct (``x + decode(z_edit) - decode(z)``), so that a
        null edit returns the input exactly and fine detail is kept.
    classify_trials:
        Noise draws of the zero-shot diffusion classifier that infers a factor's current value
        when an edit gives neither ``from`` nor metadata.
    editor:
        ``"ddim_inversion"`` (PRISM: invert under the source caption, denoise under the target)
        or ``"img2img"`` (``StableDiffusionImg2ImgPipeline`` loaded from ``model_dir`` with the
        fine-tuned components: noise to ``strength``, denoise under the target caption; no
        ``blend``).
    gradient_checkpointing:
        Recompute UNet activations in the backward pass (``unet.enable_gradient_checkpointing()``):
        same gradients, less activation memory, more time per step (1.3-1.5x on the tiny CPU pipeline).
    lr_schedule, lr_warmup_steps:
        ``"constant"``, ``"linear"`` or ``"cosine"`` decay of ``lr`` after a linear warm-up of
        ``lr_warmup_steps`` steps.
    ema_decay:
        Decay of an exponential moving average of the trained weights (0 = off, e.g. 0.999);
        the averaged weights are the ones that edit, generate and are saved.
    checkpoint_every:
        Save a resumable training state (trainable weights, AdamW moments, EMA, generator
        states, step, configuration fingerprint) every this many steps and at the end, to
        ``checkpoints/sd_counterfactual_train_state.safetensors`` in the run folder (0 = off). A
        later fit in the same run folder (``fairaudit run --resume``) with the same settings
        and data continues from the saved step.
    validation_every, validation_prompts:
        Sample ``validation_prompts`` (default: up to 4 distinct training captions) with fixed
        noise before training and every this many steps (0 = off); the grid (rows = steps,
        columns = prompts) goes to ``figures/sd_counterfactual_validation.png`` and the report.
    n_report_examples:
        Counterfactuals shown in the report's image grid.
    report_factor:
        Factor flipped for the grid when no counterfactual was requested before the report
        (default: ``device`` if captioned, else the first binary field); training images
        with their metadata are edited, half from each value.
    device, random_state, progress, mixed_precision:
        Run settings; ``"auto"``/``None`` take the run's values (CUDA when available).
    """

    name: ClassVar[str] = "sd_counterfactual"
    description: ClassVar[str] = (
        "PRISM-style Stable Diffusion counterfactuals: caption fine-tuning (LoRA or UNet), "
        "DDIM inversion and prompt editing"
    )
    supports_counterfactuals: ClassVar[bool] = True

    def __init__(
        self,
        *,
        model_dir: str = "",
        finetune: Literal["lora", "unet", "none"] = "lora",
        lora_rank: int = 4,
        lora_alpha: float | None = None,
        lr: float = 1e-4,
        max_steps: int = 500,
        batch_size: int = 8,
        resolution: int | None = None,
        caption_fields: list[str] | None = None,
        caption_template: str = DEFAULT_TEMPLATE,
        label_name: str | None = None,
        caption_phrases: dict[str, dict[str, str]] | None = None,
        field_dropout: float = 0.1,
        caption_dropout: float = 0.1,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        strength: float = 0.6,
        blend: float = 0.0,
        blend_mask: Literal["none", "auto"] = "none",
        mask_threshold: float = 0.5,
        keep_residual: bool = True,
        classify_trials: int = 8,
        editor: Literal["ddim_inversion", "img2img"] = "ddim_inversion",
        gradient_checkpointing: bool = False,
        lr_schedule: Literal["constant", "linear", "cosine"] = "constant",
        lr_warmup_steps: int = 0,
        ema_decay: float = 0.0,
        checkpoint_every: int = 0,
        validation_every: int = 0,
        validation_prompts: list[str] | None = None,
        n_report_examples: int = 6,
        report_factor: str | None = None,
        device: str = "auto",
        random_state: int | None = None,
        progress: bool | None = None,
        mixed_precision: bool | None = None,
    ):
        self.model_dir = model_dir
        self.finetune = finetune
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.lr = lr
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.resolution = resolution
        self.caption_fields = caption_fields
        self.caption_template = caption_template
        self.label_name = label_name
        self.caption_phrases = caption_phrases
        self.field_dropout = field_dropout
        self.caption_dropout = caption_dropout
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.strength = strength
        self.blend = blend
        self.blend_mask = blend_mask
        self.mask_threshold = mask_threshold
        self.keep_residual = keep_residual
        self.classify_trials = classify_trials
        self.editor = editor
        self.gradient_checkpointing = gradient_checkpointing
        self.lr_schedule = lr_schedule
        self.lr_warmup_steps = lr_warmup_steps
        self.ema_decay = ema_decay
        self.checkpoint_every = checkpoint_every
        self.validation_every = validation_every
        self.validation_prompts = validation_prompts
        self.n_report_examples = n_report_examples
        self.report_factor = report_factor
        self.device = device
        self.random_state = random_state
        self.progress = progress
        self.mixed_precision = mixed_precision

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Tiny random pipelines (``tiny://32``), a few steps each: LoRA and full-UNet."""
        common = {
            "model_dir": "tiny://32",
            "max_steps": 3,
            "batch_size": 4,
            "resolution": 32,
            "num_inference_steps": 4,
            "guidance_scale": 2.0,
            "classify_trials": 2,
            "device": "cpu",
            "progress": False,
        }
        return [
            {**common, "finetune": "lora", "lr": 1e-3},
            {
                **common,
                "finetune": "unet",
                "lr": 1e-4,
                "strength": 0.5,
                "blend_mask": "auto",
                "blend": 0.5,
            },
        ]

    # ------------------------------------------------------------------ settings
    def _device(self) -> str:
        requested = self.device
        if requested == "auto":
            requested = self.run_context().device  # the run's device (a standalone plugin: CUDA if present)
        return resolve_device(requested)

    def _seed(self) -> int:
        return int(self.random_state if self.random_state is not None else self.run_context().seed)

    def _progress(self) -> bool:
        return bool(self.progress if self.progress is not None else self.run_context().progress)

    def _mixed_precision(self) -> bool:
        return bool(
            self.mixed_precision
            if self.mixed_precision is not None
            else self.run_context().mixed_precision
        )

    def _check_params(self) -> None:
        if self.finetune not in ("lora", "unet", "none"):
            raise ValueError(f"finetune must be 'lora', 'unet' or 'none', got {self.finetune!r}")
        for name in ("field_dropout", "caption_dropout", "strength", "blend", "mask_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        for name in ("lora_rank", "batch_size", "num_inference_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.blend_mask not in ("none", "auto"):
            raise ValueError(f"blend_mask must be 'none' or 'auto', got {self.blend_mask!r}")
        if self.editor not in ("ddim_inversion", "img2img"):
            raise ValueError(f"editor must be 'ddim_inversion' or 'img2img', got {self.editor!r}")
        if self.editor == "img2img" and (self.blend > 0 or self.blend_mask != "none"):
            raise ValueError("editor 'img2img' has no inversion trajectory to blend with: set blend: 0")
        check_schedule(self.lr_schedule, self.lr_warmup_steps)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1) (0 = off), got {self.ema_decay}")
        for name in ("checkpoint_every", "validation_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 = off), got {getattr(self, name)}")
        prompts = self.validation_prompts
        if prompts is not None and (
            isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts)
        ):
            raise ValueError("validation_prompts must be a list of strings")

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet; call fit(dataset) first"
            )

    # ------------------------------------------------------------------ fitting
    def fit(self, dataset: AuditDataset) -> Self:
        """Fine-tune the UNet on ``dataset.images`` with captions from its metadata."""
        from fairaudit_diffusion.finetune import TrainConfig, finetune
        from fairaudit_diffusion.images import latent_posterior
        from fairaudit_diffusion.pipeline import load_components
        from fairaudit_diffusion.tiny import is_tiny_pipeline

        self._check_params()
        if dataset.images is None:
            raise DataError(
                f"{self.name} needs an image dataset; {dataset.name!r} has features only"
            )
        seed = self._seed()
        seed_everything(seed)
        device = self._device()
        components = load_components(self.model_dir, device)
        self.plumbing_check_ = str(self.model_dir).strip().startswith("tiny://") or is_tiny_pipeline(
            components.source
        )
        resolution = int(self.resolution or components.native_resolution)
        if resolution % components.resolution_multiple:
            raise ValueError(
                f"resolution {resolution} must be a multiple of "
                f"{components.resolution_multiple} for this pipeline"
            )
        meta = metadata_frame(dataset.y, dataset.sensitive, dataset.extras)
        captioner = self._captioner(meta, dataset.meta)
        # block by block: a streamed folder is never decoded whole, nor the split held in pixel space
        latent_mean, latent_std = latent_posterior(components, dataset.images, resolution, self.batch_size)
        full_captions = captioner.captions(meta)
        eval_rows = np.arange(min(len(meta), _EVAL_ROWS))
        eval_loss = self._eval_loss_fn(
            components, latent_mean[eval_rows], [full_captions[i] for i in eval_rows], seed
        )
        self.eval_loss_before_ = eval_loss()

        def caption_fn(rows: np.ndarray, rng: np.random.Generator) -> list[str]:
            return captioner.captions(
                meta.iloc[rows],
                field_dropout=self.field_dropout,
                caption_dropout=self.caption_dropout,
                rng=rng,
            )

        self.components_: SDComponents = components
        self.img2img_pipe_ = None  # built on the first img2img edit, from these components
        self._validation_rows: dict[int, np.ndarray] = {}
        self.resolution_ = resolution
        self.image_shape_ = tuple(int(s) for s in dataset.images.shape[1:])
        self.device_ = device
        self.validation_prompts_ = self._validation_prompts(full_captions)
        cfg = TrainConfig(
            mode=self.finetune,
            lr=self.lr,
            max_steps=self.max_steps,
            batch_size=self.batch_size,
            seed=seed,
            device=device,
            mixed_precision=self._mixed_precision(),
            progress=self._progress(),
            lora_rank=self.lora_rank,
            lora_alpha=self.lora_alpha,
            lr_schedule=self.lr_schedule,
            lr_warmup_steps=self.lr_warmup_steps,
            ema_decay=self.ema_decay,
            gradient_checkpointing=self.gradient_checkpointing,
            checkpoint_every=self.checkpoint_every,
            state_path=self.run_context().checkpoint_path(f"{self.name}_train_state.safetensors")
            if self.checkpoint_every > 0
            else None,
            validation_every=self.validation_every,
        )
        if self.checkpoint_every > 0 and cfg.state_path is None and self.finetune != "none":
            warnings.warn(
                f"{self.name}: checkpoint_every={self.checkpoint_every} needs a run folder (an audit, "
                "or bind(RunContext(work_dir=...))); no resumable training state is saved",
                stacklevel=2,
            )
        identity = {
            "pipeline": str(components.source),
            "resolution": resolution,
            "n_images": len(latent_mean),
            "data": _data_digest(dataset.images, full_captions),
            "captions": [captioner.fields, self.caption_template, captioner.label_name, self.caption_phrases],
            "dropout": [self.field_dropout, self.caption_dropout],
        }
        try:
            self.train_log_ = finetune(
                components,
                latent_mean,
                latent_std,
                caption_fn,
                cfg,
                identity=identity,
                on_validation=self._validation_samples if self.validation_every > 0 else None,
            )
        except BaseException:
            del self.components_  # not fitted
            raise
        self.eval_loss_after_ = eval_loss()
        self.captioner_ = captioner
        self.field_values_ = field_values(meta, captioner.fields)
        self.train_state_ = str(cfg.state_path) if cfg.state_path is not None and cfg.state_path.is_file() else None
        self.validation_grid_ = self._save_validation_grid()
        self.checkpoint_ = self._save_weights()
        self.report_rows_ = self._report_rows(meta)
        self.report_images_ = np.asarray(dataset.images[self.report_rows_], dtype=np.float32)
        self.report_metadata_ = meta.iloc[self.report_rows_].reset_index(drop=True)
        return self

    def _validation_prompts(self, captions: list[str]) -> list[str]:
        """The prompts of the validation grid: as given, or up to 4 distinct training captions."""
        if self.validation_prompts is not None:
            return list(self.validation_prompts)
        return list(dict.fromkeys(captions))[:4]

    def _validation_samples(self, step: int) -> torch.Tensor:
        """Images ``(k, C, H, W)`` uint8 of the validation prompts, from the same noise every time."""
        import torch

        from fairaudit_diffusion.editing import ddim_plan, sample_latents

        c = self.components_
        prompts = self.validation_prompts_
        plan = ddim_plan(c.scheduler, self.num_inference_steps, 1.0)
        gen = torch_generator(self._seed() + 4)
        with torch.no_grad(), self._autocast():
            latents = sample_latents(
                c.unet,
                plan,
                self._latent_shape(len(prompts)),
                c.encode_text(prompts),
                c.encode_text([""] * len(prompts)),
                self.guidance_scale,
                gen,
                c.device,
            )
        images = self._to_output(c.decode(latents.float()))
        # the grid may exist after a resume, so the images travel in the training state
        self._save_validation_grid({**getattr(self, "_validation_rows", {}), step: images})
        return torch.from_numpy(np.round(images * 255.0).astype(np.uint8))

    def _save_validation_grid(self, rows: dict[int, np.ndarray] | None = None) -> dict[str, Any] | None:
        """Write the validation grid (rows = steps, columns = prompts); its report block."""
        from fairaudit_diffusion.report import validation_grid_section

        if rows is None:
            logged = getattr(getattr(self, "train_log_", None), "validation", {}) or {}
            rows = {s: v.numpy().astype(np.float32) / 255.0 for s, v in logged.items()}
        self._validation_rows = dict(rows)
        if not rows:
            return None
        return validation_grid_section(
            rows,
            self.validation_prompts_,
            figure_path=self.run_context().figure_path(f"{self.name}_validation.png"),
            ema=self.ema_decay > 0,
        )

    def _captioner(self, meta: pd.DataFrame, dataset_meta: Mapping[str, Any]) -> CaptionBuilder:
        if self.caption_fields is not None:
            fields = tuple(canonical_field(f) for f in self.caption_fields)
            missing = [f for f in fields if f not in meta.columns]
            if missing:
                raise DataError(
                    f"caption_fields {missing} are not in the dataset's metadata "
                    f"(available: {sorted(meta.columns)})"
                )
        else:
            named = [
                canonical_field(f)
                for f in template_fields(self.caption_template)
                if f not in ("fields", "label_name")
            ]
            fields = tuple(
                dict.fromkeys([*(f for f in DEFAULT_FIELDS if f in meta.columns), *named])
            )
        label_name = self.label_name or dataset_meta.get("label_name") or "disease"
        return CaptionBuilder(
            fields=fields,
            template=self.caption_template,
            label_name=str(label_name),
            phrases=dict(self.caption_phrases or {}),
        )

    def _report_factor(self) -> str | None:
        """The factor the report's grid flips (see ``report_factor``)."""
        fields = self.captioner_.fields
        if self.report_factor is not None:
            factor = canonical_field(self.report_factor)
            if factor not in fields:
                raise DataError(
                    f"report_factor {self.report_factor!r} is not a caption field {list(fields)}"
                )
            return factor
        binary = [f for f in fields if len(self.field_values_.get(f, [])) == 2]
        if "device" in binary:
            return "device"
        return next((f for f in binary if f != "label"), binary[0] if binary else None)

    def _report_rows(self, meta: pd.DataFrame) -> np.ndarray:
        """Training rows shown in the grid: alternately from each value of the report factor."""
        factor = self._report_factor()
        k = min(self.n_report_examples, len(meta))
        if factor is None or factor not in meta.columns:
            return np.arange(k)
        keys = np.array([value_key(v) for v in meta[factor].tolist()], dtype=object)
        pools = [list(np.flatnonzero(keys == v)) for v in self.field_values_[factor]]
        rows: list[int] = []
        while len(rows) < k and any(pools):
            for pool in pools:
                if pool and len(rows) < k:
                    rows.append(int(pool.pop(0)))
        return np.array(sorted(rows), dtype=int)

    def _eval_loss_fn(
        self, components: SDComponents, latents: torch.Tensor, captions: list[str], seed: int
    ) -> Any:
        """A deterministic held-fixed denoising loss (same noise and timesteps before and after)."""
        import torch

        from fairaudit_diffusion.finetune import denoising_loss

        gen = torch_generator(seed + 12345)
        reps = len(_EVAL_TIMESTEPS)
        lat = latents.repeat(reps, 1, 1, 1)
        noise = torch.randn(lat.shape, generator=gen)
        n_train = int(components.train_scheduler.config.num_train_timesteps)
        steps = torch.tensor([int(t * n_train / 1000) for t in _EVAL_TIMESTEPS]).repeat_interleave(
            len(latents)
        )

        def loss() -> float:
            return denoising_loss(
                components, lat, components.encode_text(captions * reps), steps, noise
            )

        return loss

    def _save_weights(self) -> str | None:
        from fairaudit.training import save_checkpoint
        from fairaudit_diffusion.finetune import trained_state

        if self.finetune == "none":
            return None
        path = self.run_context().checkpoint_path(f"{self.name}_{self.finetune}.safetensors")
        if path is None:
            return None
        metadata = {
            "format": "fairaudit-diffusion/1",
            "finetune": self.finetune,
            "lora_rank": str(self.lora_rank),
            "lora_alpha": str(self.lora_alpha),
            "model_dir": str(self.model_dir),
            "resolution": str(self.resolution_),
        }
        save_checkpoint(path, trained_state(self.components_.unet, self.finetune), metadata)
        return str(path)

    # ------------------------------------------------------------------ sampling
    def _autocast(self) -> Any:
        import torch

        device = self.device_
        return torch.autocast(
            device_type="cuda" if device.startswith("cuda") else "cpu",
            dtype=torch.bfloat16,
            enabled=self._mixed_precision(),
        )

    def _latent_shape(self, n: int) -> tuple[int, ...]:
        c = self.components_
        side = self.resolution_ // c.vae_scale_factor
        return (n, int(c.unet.config.in_channels), side, side)

    def _to_output(self, pixels: torch.Tensor, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Pixels -> images of ``shape`` ``(C, H, W)`` (default: the training images' shape)."""
        from fairaudit_diffusion.images import from_model_space

        channels, height, width = shape or self.image_shape_
        return from_model_space(pixels, (height, width), channels=1 if channels == 1 else 3)

    def _decode_to_output(self, latents: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
        """Decoded images of ``shape``, one block at a time (never the whole set in pixel space)."""
        from fairaudit_diffusion.images import chunk_rows

        rows = chunk_rows(self.batch_size)
        parts = [
            self._to_output(self.components_.decode(latents[start : start + rows], self.batch_size), shape)
            for start in range(0, len(latents), rows)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, *shape), np.float32)

    def generate(self, y: np.ndarray, sensitive_features: pd.DataFrame) -> np.ndarray:
        """One image per row, sampled from the caption of its label and groups.

        Fields absent from ``sensitive_features`` (e.g. device, view) are left out of the
        caption, so they follow the training distribution (the model learned partial captions).
        """

        from fairaudit_diffusion.editing import ddim_plan, sample_latents

        self._check_fitted()
        meta = metadata_frame(np.asarray(y), sensitive_features)
        captions = self.captioner_.captions(meta)
        c = self.components_
        plan = ddim_plan(c.scheduler, self.num_inference_steps, 1.0)
        gen = torch_generator(self._seed() + 1)
        out = []
        with self._autocast():
            for start in range(0, len(captions), self.batch_size):
                batch = captions[start : start + self.batch_size]
                latents = sample_latents(
                    c.unet,
                    plan,
                    self._latent_shape(len(batch)),
                    c.encode_text(batch),
                    c.encode_text([""] * len(batch)),
                    self.guidance_scale,
                    gen,
                    c.device,
                )
                out.append(self._to_output(c.decode(latents.float())))
        if not out:
            channels, height, width = self.image_shape_
            return np.zeros((0, channels, height, width), np.float32)
        return np.concatenate(out).astype(np.float32)

    # ------------------------------------------------------------------ editing
    def counterfactual(self, images: np.ndarray, edit: dict[str, Any]) -> np.ndarray:
        """Edit ``images`` by changing their caption; returns images of the input's shape.

        ``edit`` is either ``{"source_prompt": ..., "target_prompt": ...}`` (a string or one per
        image) or ``{"factor": "device", "to": 0}``. A factor edit may give ``"from"`` (value or
        one per image) and ``"metadata"`` (a DataFrame or dict of per-image columns) to build
        full source captions; without them the factor's current value is inferred by the
        fine-tuned model itself (zero-shot diffusion classifier) and the captions describe
        only that factor. Without ``"to"`` a binary factor is flipped.
        """
        import torch

        from fairaudit_diffusion.editing import ddim_plan, edit_latents, edit_mask
        from fairaudit_diffusion.images import latent_posterior

        self._check_fitted()
        arr = np.asarray(images, dtype=np.float32)
        if arr.ndim != 4 or arr.shape[1] not in (1, 3):
            raise ValueError(f"counterfactual expects images (n, 1|3, H, W), got shape {arr.shape}")
        c = self.components_
        latents = latent_posterior(c, arr, self.resolution_, self.batch_size)[0].to(c.device)
        prompts = resolve_edit(
            edit,
            len(arr),
            self.captioner_,
            self.field_values_,
            lambda meta, factor, known: self._infer_values(latents, meta, factor, known),
        )
        sources, targets = prompts.sources, prompts.targets
        plan = ddim_plan(c.scheduler, self.num_inference_steps, self.strength)
        gen = torch_generator(self._seed() + 2)
        edited = []
        with self._autocast():
            for start in range(0, len(arr) if self.editor == "ddim_inversion" else 0, self.batch_size):
                sl = slice(start, start + self.batch_size)
                z = latents[sl]
                src, tgt = c.encode_text(sources[sl]), c.encode_text(targets[sl])
                mask = None
                if self.blend_mask == "auto":
                    mask = edit_mask(c.unet, plan, z, src, tgt, gen, threshold=self.mask_threshold)
                edited.append(
                    edit_latents(
                        c.unet,
                        plan,
                        z,
                        src,
                        tgt,
                        c.encode_text([""] * len(z)),
                        self.guidance_scale,
                        blend=self.blend,
                        mask=mask,
                    ).float()
                )
        if self.editor == "img2img":
            edited = self._img2img_edit(arr, latents, targets, gen)
        z_edit = torch.cat(edited) if edited else latents
        out = self._decode_to_output(z_edit, arr.shape[1:])
        if self.keep_residual:
            recon = self._decode_to_output(latents, arr.shape[1:])
            out = np.clip(arr + out - recon, 0.0, 1.0).astype(np.float32)
        self.last_edit_ = prompts.info
        self._keep_examples(arr, out, sources, targets, prompts.info)
        return out

    def _img2img_edit(
        self, arr: np.ndarray, latents: torch.Tensor, targets: list[str], gen: torch.Generator
    ) -> list[torch.Tensor]:
        """Edited latents by ``StableDiffusionImg2ImgPipeline`` (none when ``strength`` runs no step)."""
        from fairaudit_diffusion.images import to_model_space
        from fairaudit_diffusion.img2img import img2img_latents, load_img2img_pipeline

        if int(self.num_inference_steps * self.strength) < 1:
            return []  # the pipeline would run no step: the edit is the identity
        c = self.components_
        if getattr(self, "img2img_pipe_", None) is None:
            self.img2img_pipe_ = load_img2img_pipeline(c, progress=self._progress())
        edited = []
        with self._autocast():
            for start in range(0, len(arr), self.batch_size):
                sl = slice(start, start + self.batch_size)
                pixels = (to_model_space(arr[sl], self.resolution_).to(c.device) + 1.0) / 2.0
                edited.append(
                    img2img_latents(
                        self.img2img_pipe_,
                        pixels,
                        c.encode_text(targets[sl]),
                        c.encode_text([""] * len(pixels)),
                        strength=self.strength,
                        num_inference_steps=self.num_inference_steps,
                        guidance_scale=self.guidance_scale,
                        generator=gen,
                    ).float()
                )
        return edited

    def _infer_values(
        self, latents: torch.Tensor, meta: pd.DataFrame, factor: str, known: list[str]
    ) -> list[str]:
        """The factor value whose caption best explains each image (lowest denoising error)."""
        from fairaudit_diffusion.editing import classify_by_denoising

        c = self.components_
        rows = meta.to_dict(orient="records")
        gen = torch_generator(self._seed() + 3)
        choice = []
        for start in range(0, len(latents), self.batch_size):
            part = rows[start : start + self.batch_size]
            conds = [
                c.encode_text([self.captioner_.caption({**r, factor: v}) for r in part])
                for v in known
            ]
            with self._autocast():
                errors = classify_by_denoising(
                    c.unet,
                    c.train_scheduler,
                    latents[start : start + len(part)],
                    conds,
                    gen,
                    self.classify_trials,
                )
            choice.extend(known[j] for j in errors.argmin(axis=1))
        return choice

    # ------------------------------------------------------------------ report
    def _keep_examples(
        self,
        originals: np.ndarray,
        edited: np.ndarray,
        sources: list[str],
        targets: list[str],
        info: dict[str, Any],
    ) -> None:
        k = min(self.n_report_examples, len(originals))
        self.examples_ = {
            "original": originals[:k].copy(),
            "counterfactual": edited[:k].copy(),
            "source": sources[:k],
            "target": targets[:k],
            "info": info,
        }

    def report_blocks(self) -> list[dict[str, Any]]:
        """The report's blocks: the original / counterfactual / difference grid of the last edit,
        its captions, the fine-tuning summary and the validation grid; first, for a tiny random
        pipeline, a text block marking all of it as a plumbing check. The grid's details
        (prompts, edit, mean change, fine-tuning figures) stay in ``report_details_``."""
        from fairaudit_diffusion.report import (
            finetune_table,
            image_block,
            image_grid_section,
            plumbing_check_block,
            prompts_table,
        )

        examples = getattr(self, "examples_", None)
        if not examples and hasattr(self, "report_images_"):
            factor = self._report_factor()
            if factor is None or len(self.report_images_) == 0:
                return []
            edit = {"factor": factor, "metadata": self.report_metadata_}
            self.counterfactual(self.report_images_, edit)
            examples = self.examples_
        if not examples or len(examples["original"]) == 0:
            return []
        if self.editor == "img2img":
            how = (
                f"StableDiffusionImg2ImgPipeline: noised through {self.strength:g} of "
                f"{self.num_inference_steps} steps, then guided denoising"
            )
        else:
            how = (
                f"DDIM inversion through {self.strength:g} of {self.num_inference_steps} steps under "
                "the source caption, then guided denoising"
            )
        caption = (
            f"{how} (scale {self.guidance_scale:g}) under the target caption. "
            "Difference: counterfactual - original, grey = no change."
        )
        log = self.train_log_
        finetune = {
            "mode": self.finetune,
            "steps": len(log.losses),
            "resumed_from": log.resumed_from,
            "lr_schedule": self.lr_schedule,
            "lr_warmup_steps": self.lr_warmup_steps,
            "ema_decay": self.ema_decay,
            "gradient_checkpointing": self.gradient_checkpointing,
            "eval_loss_before": self.eval_loss_before_,
            "eval_loss_after": self.eval_loss_after_,
            "samples_per_s": log.samples_per_s,
            "checkpoint": self.checkpoint_,
            "train_state": self.train_state_,
        }
        section = image_grid_section(
            examples,
            title="Stable Diffusion counterfactuals (PRISM-style prompt edits)",
            caption=caption,
            figure_path=self.run_context().figure_path(f"{self.name}_grid.png"),
            extra={"finetune": finetune, "editor": self.editor},
        )
        self.report_details_ = section
        blocks = [plumbing_check_block(str(self.model_dir))] if self.plumbing_check_ else []
        blocks += [image_block(section), prompts_table(section), finetune_table(finetune)]
        if self.validation_grid_ is not None:
            blocks.append(self.validation_grid_)
        return blocks


def _data_digest(images: Any, captions: list[str]) -> str:
    """A digest of the training images (file fingerprints when streamed) and their captions."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    if hasattr(images, "update_hash"):  # streamed or memory-mapped rows hash their own fingerprints
        images.update_hash(h)
    else:  # row blocks: a memory-mapped array is never read whole (same bytes as one update)
        images = np.asanyarray(images)
        h.update(f"{images.dtype}{images.shape}".encode())
        for start in range(0, len(images), 256):
            h.update(memoryview(np.ascontiguousarray(images[start:start + 256])).cast("B"))
    h.update("\n".join(captions).encode("utf-8"))
    return h.hexdigest()
