"""``CAFGAN``: the generator plugin (conditional WGAN-GP + fairness and clinical critics)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
import pandas as pd

from fairaudit import BaseGenerator, DataError
from fairaudit.training import resolve_device, seed_everything, wrap_ddp

if TYPE_CHECKING:
    import torch

    from fairaudit import AuditDataset
    from fairaudit_cafgan.data import WorkingImages

#: Label used for rows whose group value is missing.
MISSING_GROUP = "(missing)"


def group_values(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The group column as strings, missing values as :data:`MISSING_GROUP`."""
    values = frame[column].astype("object")
    return np.asarray(values.where(values.notna(), MISSING_GROUP).astype(str))


class CAFGAN(BaseGenerator):
    """Clinically-Aware and Fair GAN: a conditional WGAN-GP whose generator also minimises
    a differentiable TPR gap (frozen diagnostic CNN) and a lung-plausibility loss (frozen
    lung U-Net).  ``lambda_fair = lambda_clinic = 0`` is a plain conditional WGAN-GP.

    Parameters
    ----------
    image_size:
        Working resolution of the networks (32 for smoke tests, 64 or 128).  Training images
        of another size are resized to it; generated images are returned at the size of the
        training images.
    z_dim, base_channels:
        Noise dimension; channel width of the generator and critic (doubling per level, x8 cap).
    n_critic, gp_weight, lr_g, lr_d, betas:
        Critic steps per generator step, gradient-penalty weight, Adam settings.
    lambda_fair:
        Weight of the soft TPR gap of the frozen diagnostic CNN on generated positives.
    lambda_clinic:
        Weight of the clinical (lung area, left/right balance, contiguity) loss.
    lambda_warmup:
        Fraction of the generator steps over which both lambdas ramp up from 0 (the seed's
        version 2 anneals its extra losses in the same way).
    max_epochs, n_steps:
        Epochs over the training set, or (when set) the number of generator steps.
    batch_size:
        Real images per critic step.
    classifier_epochs, segmenter_epochs, critic_channels, segmenter_channels:
        Training length and width of the frozen critics.
    critic_augment:
        Train the frozen critics on randomly blurred and noised real images, so that they
        judge generated images by finding and anatomy rather than by generator artefacts.
    critic_balance:
        Train the diagnostic CNN with weights that give every (label, group) cell of the
        training split the same total weight.  Without them the CNN also learns each
        group's base rate as a prior, and the TPR gap on generated positives then partly
        measures prevalence (which the generator cannot change) instead of how visible the
        finding is on each group's positives.
    fair_per_group:
        Generated positives per group in each fairness batch.
    fair_level_up:
        Let the fairness term raise the lagging group's TPR only (the best group's TPR is
        detached); ``False`` also pushes the best group down ("levelling down").
    clinical_tolerance:
        Deviations (in reference standard deviations) the clinical loss tolerates; the
        reference is the U-Net's output on real training images of the same label and group.
    segmenter_checkpoint:
        A lung U-Net saved by :meth:`save` (``*_segmenter.safetensors``); used instead of
        training one on the dataset's masks.
    group_attribute:
        Sensitive column the generator is conditioned on and the TPR gap is computed over.
    num_workers:
        DataLoader worker processes that decode and resize streamed images (``image_folder``
        with ``stream: true``, read per batch and never held whole); 0 decodes in the training
        process.  In-memory images are resized once, block by block, and ignore it.
    device, random_state, progress:
        ``"auto"`` = CUDA when present; seed; progress bars (``None``, the default: the run's
        setting, off under ``fairaudit run -q``).
    """

    name = "cafgan"
    description = (
        "CAF-GAN: conditional WGAN-GP with a differentiable TPR-gap fairness critic and a "
        "lung-plausibility clinical critic (lambda_fair = lambda_clinic = 0: plain WGAN-GP)."
    )

    def __init__(
        self,
        *,
        image_size: Literal[32, 64, 128] = 64,
        z_dim: int = 64,
        base_channels: int = 32,
        n_critic: int = 5,
        gp_weight: float = 10.0,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.9),
        lambda_fair: float = 1.0,
        lambda_clinic: float = 0.5,
        lambda_warmup: float = 0.25,
        max_epochs: int = 100,
        n_steps: int | None = None,
        batch_size: int = 64,
        classifier_epochs: int = 10,
        segmenter_epochs: int = 10,
        critic_channels: int = 16,
        segmenter_channels: int = 8,
        critic_augment: bool = True,
        critic_balance: bool = False,
        fair_per_group: int = 8,
        fair_level_up: bool = True,
        clinical_tolerance: float = 1.5,
        segmenter_checkpoint: str | None = None,
        group_attribute: str = "sex",
        num_workers: int = 0,
        device: str = "auto",
        random_state: int = 0,
        progress: bool | None = None,
    ):
        self.image_size = image_size
        self.z_dim = z_dim
        self.base_channels = base_channels
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        self.lr_g = lr_g
        self.lr_d = lr_d
        self.betas = betas
        self.lambda_fair = lambda_fair
        self.lambda_clinic = lambda_clinic
        self.lambda_warmup = lambda_warmup
        self.max_epochs = max_epochs
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.classifier_epochs = classifier_epochs
        self.segmenter_epochs = segmenter_epochs
        self.critic_channels = critic_channels
        self.segmenter_channels = segmenter_channels
        self.critic_augment = critic_augment
        self.critic_balance = critic_balance
        self.fair_per_group = fair_per_group
        self.fair_level_up = fair_level_up
        self.clinical_tolerance = clinical_tolerance
        self.segmenter_checkpoint = segmenter_checkpoint
        self.group_attribute = group_attribute
        self.num_workers = num_workers
        self.device = device
        self.random_state = random_state
        self.progress = progress

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [
            {
                "image_size": 32,
                "z_dim": 8,
                "base_channels": 4,
                "n_steps": 4,
                "batch_size": 16,
                "n_critic": 2,
                "classifier_epochs": 1,
                "segmenter_epochs": 1,
                "critic_channels": 4,
                "segmenter_channels": 4,
                "fair_per_group": 2,
                "device": "cpu",
                "progress": False,
            }
        ]

    # ------------------------------------------------------------ validation
    def _check_params(self) -> None:
        from fairaudit_cafgan.networks import SUPPORTED_SIZES

        problems = []
        if self.image_size not in SUPPORTED_SIZES:
            problems.append(f"image_size must be one of {SUPPORTED_SIZES} (got {self.image_size})")
        for key in (
            "z_dim",
            "base_channels",
            "n_critic",
            "batch_size",
            "critic_channels",
            "segmenter_channels",
            "fair_per_group",
        ):
            if int(getattr(self, key)) < 1:
                problems.append(f"{key} must be >= 1 (got {getattr(self, key)})")
        for key in (
            "lambda_fair",
            "lambda_clinic",
            "gp_weight",
            "classifier_epochs",
            "segmenter_epochs",
        ):
            if getattr(self, key) < 0:
                problems.append(f"{key} must be >= 0 (got {getattr(self, key)})")
        if not 0.0 <= self.lambda_warmup <= 1.0:
            problems.append(f"lambda_warmup must be in [0, 1] (got {self.lambda_warmup})")
        if int(self.num_workers) < 0:
            problems.append(f"num_workers must be >= 0 (got {self.num_workers})")
        if self.n_steps is not None and self.n_steps < 1:
            problems.append(f"n_steps must be >= 1 when given (got {self.n_steps})")
        if self.n_steps is None and self.max_epochs < 1:
            problems.append(f"max_epochs must be >= 1 (got {self.max_epochs})")
        if len(tuple(self.betas)) != 2:
            problems.append(f"betas must be two numbers (got {self.betas})")
        if problems:
            raise ValueError(f"{self.name}: " + "; ".join(problems))

    def _check_data(self, dataset: AuditDataset) -> None:
        if dataset.images is None:
            raise DataError(f"{self.name} needs images; dataset {dataset.name!r} has features only")
        if self.group_attribute not in dataset.sensitive.columns:
            raise DataError(
                f"{self.name}: group_attribute {self.group_attribute!r} is not a sensitive "
                f"attribute of dataset {dataset.name!r}; available: {dataset.attributes}"
            )
        shape = tuple(int(s) for s in dataset.images.shape)  # streamed images are not decoded here
        if len(shape) != 4 or shape[2] != shape[3]:
            raise DataError(f"{self.name} needs square images (n, C, H, W); got {shape}")
        if dataset.masks is None and self.segmenter_checkpoint is None and self.lambda_clinic > 0:
            raise DataError(
                f"{self.name}: dataset {dataset.name!r} has no lung masks (dataset.masks is None), "
                "which the clinical critic is trained on; give a dataset with masks, set "
                "segmenter_checkpoint to a trained lung U-Net, or set lambda_clinic: 0"
            )
        if set(np.unique(dataset.y)) - {0, 1}:
            raise DataError(f"{self.name} needs a binary 0/1 target")

    # ------------------------------------------------------------ fit
    def fit(self, dataset: AuditDataset) -> Self:
        """Train the frozen critics on the real training split, then the conditional GAN.

        The images are read at the working resolution only: resized block by block when in
        memory, decoded and resized per batch when streamed (see :mod:`fairaudit_cafgan.data`).
        """
        import torch

        from fairaudit_cafgan.data import WorkingImages, resize_masks_in_chunks

        self._check_params()
        self._check_data(dataset)
        seed_everything(self.random_state)
        self.device_ = resolve_device(self.device)
        self.output_shape_ = tuple(int(s) for s in dataset.images.shape[1:])
        images = WorkingImages(dataset.images, self.image_size)
        masks = None if dataset.masks is None else resize_masks_in_chunks(dataset.masks, self.image_size)
        groups = group_values(dataset.sensitive, self.group_attribute)
        self.groups_ = sorted(set(groups.tolist()))
        group_idx = torch.as_tensor([self.groups_.index(g) for g in groups], dtype=torch.long)
        y = torch.as_tensor(np.asarray(dataset.y), dtype=torch.long)
        self.examples_ = self._examples(images, y.numpy(), groups)
        self._fit_critics(images, masks, y, group_idx)
        self._fit_gan(images, y, group_idx)
        self._generated_plausibility(dataset)
        path = self.run_context().checkpoint_path(f"{self._tag()}_generator.safetensors")
        if path is not None:
            self.save(path.parent)
        self._to("cpu")
        return self

    def _show_progress(self) -> bool:
        return self.run_context().progress if self.progress is None else bool(self.progress)

    def _fit_critics(
        self, images: WorkingImages, masks: torch.Tensor | None, y: torch.Tensor, group_idx: torch.Tensor
    ) -> None:
        """Diagnostic CNN and lung U-Net on real data (frozen), clinical references,
        plausibility bounds from the real masks (``masks``: at the working resolution)."""
        from fairaudit_cafgan.critics import CriticSettings, cell_balanced_weights, train_diagnostic_classifier
        from fairaudit_cafgan.losses import conditional_stats_reference
        from fairaudit_cafgan.plausibility import (
            judge_measurements,
            lung_plausibility,
            measurement_bounds,
            plausibility_reference,
            summarise,
        )

        settings = CriticSettings(
            epochs=self.classifier_epochs,
            batch_size=self.batch_size,
            lr=5e-3,
            device=self.device_,
            seed=self.random_state,
            show_progress=self._show_progress(),
            augment=self.critic_augment,
            num_workers=int(self.num_workers),
        )
        self.classifier_, self.classifier_history_ = train_diagnostic_classifier(
            images,
            y,
            image_size=self.image_size,
            base_channels=self.critic_channels,
            settings=settings,
            weights=cell_balanced_weights(y, group_idx) if self.critic_balance else None,
        )
        self.segmenter_, self.segmenter_history_ = self._segmenter(images, masks, settings)
        self.reference_: dict[str, list[float]] = {}
        self.plausibility_bounds_: dict[str, float] = {}
        self.real_plausibility_: dict[str, dict[str, float]] = {}
        if self.segmenter_ is None:
            return
        n_groups = len(self.groups_)
        stats, measured = self._segmenter_statistics(images)
        table = conditional_stats_reference(stats, y * n_groups + group_idx, 2 * n_groups)
        self.reference_ = {k: v.tolist() for k, v in table.items()}
        if masks is not None:
            real = masks.numpy()
            self.plausibility_bounds_ = plausibility_reference(real)
            real_summary = summarise(lung_plausibility(real, self.plausibility_bounds_))
        else:  # no reference masks: the segmenter's own masks (thresholded at 0.5) stand in
            self.plausibility_bounds_ = measurement_bounds(measured)
            real_summary = summarise(judge_measurements(measured, self.plausibility_bounds_))
        self.real_plausibility_ = {
            "masks": real_summary,
            "segmenter": summarise(judge_measurements(measured, self.plausibility_bounds_)),
        }

    def _segmenter_statistics(self, images: WorkingImages) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
        """Per-image soft-mask statistics and hard-mask measurements of the segmenter's output
        on the real images, block by block (the masks themselves are not kept)."""
        import torch

        from fairaudit_cafgan.critics import predict_in_batches
        from fairaudit_cafgan.data import CHUNK_ROWS
        from fairaudit_cafgan.losses import soft_mask_statistics
        from fairaudit_cafgan.plausibility import concat_measurements, mask_measurements

        assert self.segmenter_ is not None
        stats: list[dict[str, torch.Tensor]] = []
        measured: list[dict[str, np.ndarray]] = []
        for start in range(0, len(images), CHUNK_ROWS):
            soft = predict_in_batches(self.segmenter_, images[start:start + CHUNK_ROWS], self.device_, CHUNK_ROWS)
            stats.append(soft_mask_statistics(soft.float()))
            measured.append(mask_measurements(soft.numpy()))
        return {k: torch.cat([s[k] for s in stats]) for k in stats[0]}, concat_measurements(measured)

    def _fit_gan(self, images: WorkingImages, y: torch.Tensor, group_idx: torch.Tensor) -> None:
        import torch

        from fairaudit_cafgan.networks import ConditionalGenerator, ProjectionCritic
        from fairaudit_cafgan.trainer import FrozenCritics, GANSettings, train_gan

        n_groups = len(self.groups_)
        positives = np.bincount(group_idx[y == 1].numpy(), minlength=n_groups)
        gan = GANSettings(
            z_dim=self.z_dim,
            n_groups=n_groups,
            n_critic=self.n_critic,
            gp_weight=self.gp_weight,
            lr_g=self.lr_g,
            lr_d=self.lr_d,
            betas=(float(self.betas[0]), float(self.betas[1])),
            lambda_fair=self.lambda_fair,
            lambda_clinic=self.lambda_clinic,
            lambda_warmup=self.lambda_warmup,
            fair_per_group=self.fair_per_group,
            fair_level_up=self.fair_level_up,
            clinical_tolerance=self.clinical_tolerance,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            n_steps=self.n_steps,
            device=self.device_,
            seed=self.random_state,
            show_progress=self._show_progress(),
            fair_groups=[g for g in range(n_groups) if positives[g] > 0],
            num_workers=int(self.num_workers),
        )
        torch.manual_seed(self.random_state)
        channels = images.shape[1]
        G = ConditionalGenerator(
            self.z_dim, 2 * n_groups, self.image_size, self.base_channels, channels_out=channels
        ).to(self.device_)
        D = ProjectionCritic(2 * n_groups, self.image_size, self.base_channels, channels_in=channels).to(self.device_)
        reference = {k: torch.tensor(v) for k, v in self.reference_.items()}
        critics = FrozenCritics(self.classifier_, self.segmenter_, reference)
        self.history_ = train_gan(
            wrap_ddp(G, self.device_), wrap_ddp(D, self.device_), images, y, group_idx, critics, gan
        )
        self.generator_, self.critic_ = G.eval(), D.eval()

    def _segmenter(
        self, images: WorkingImages, masks: torch.Tensor | None, settings: Any
    ) -> tuple[torch.nn.Module | None, list[dict[str, float]]]:
        from fairaudit_cafgan.critics import CriticSettings, train_segmenter
        from fairaudit_cafgan.networks import freeze

        if self.segmenter_checkpoint is not None:
            return freeze(self._load_segmenter(Path(self.segmenter_checkpoint), settings.device)), []
        if masks is None:
            return None, []
        seg_settings = CriticSettings(**{**settings.__dict__, "epochs": self.segmenter_epochs})
        return train_segmenter(
            images,
            (masks >= 0.5).float(),
            base_channels=self.segmenter_channels,
            depth=self._segmenter_depth(),
            settings=seg_settings,
        )

    def _examples(self, images: WorkingImages, y: np.ndarray, groups: np.ndarray, k: int = 3) -> dict[str, np.ndarray]:
        """Up to ``k`` real images per ``"<group>|<label>"`` cell, for the sample grid."""
        out: dict[str, np.ndarray] = {}
        for g in self.groups_:
            for label in (0, 1):
                rows = np.flatnonzero((groups == g) & (y == label))[:k]
                out[f"{g}|{label}"] = images[rows].numpy().copy()
        return out

    def _segmenter_depth(self) -> int:
        return 2 if self.image_size <= 32 else 3

    @staticmethod
    def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
        from fairaudit_cafgan.data import resize

        return resize(images, size)

    def _generated_plausibility(self, dataset: AuditDataset) -> None:
        """Plausibility of generated images (segmenter masks), with the training conditions."""
        from fairaudit_cafgan.critics import predict_in_batches
        from fairaudit_cafgan.plausibility import lung_plausibility, summarise

        self.generated_plausibility_: dict[str, float] = {}
        if self.segmenter_ is None:
            return
        import torch

        rng = np.random.default_rng(self.random_state)
        rows = rng.choice(len(dataset), size=min(512, len(dataset)), replace=False)
        fake = self._generate_working(dataset.y[rows], group_values(dataset.sensitive, self.group_attribute)[rows])
        soft = predict_in_batches(self.segmenter_, torch.from_numpy(fake), self.device_)
        self.generated_plausibility_ = summarise(lung_plausibility(soft.numpy(), self.plausibility_bounds_))

    # ------------------------------------------------------------ generate
    def _check_fitted(self) -> None:
        from sklearn.exceptions import NotFittedError

        if not hasattr(self, "generator_"):
            raise NotFittedError(f"{self.name} is not fitted; call fit(dataset) first")

    def _generate_working(self, y: np.ndarray, groups: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Images at the working resolution for labels ``y`` and group names ``groups``."""
        import torch

        from fairaudit_cafgan.trainer import conditions

        self._check_fitted()
        y = np.asarray(y)
        if set(np.unique(y)) - {0, 1}:
            raise DataError(f"{self.name}.generate needs labels 0/1")
        unknown = sorted(set(groups.tolist()) - set(self.groups_))
        if unknown:
            raise DataError(
                f"{self.name}.generate: group(s) {unknown} of {self.group_attribute!r} were "
                f"not seen in training; known groups: {self.groups_}"
            )
        idx = torch.as_tensor([self.groups_.index(g) for g in groups], dtype=torch.long)
        c = conditions(torch.as_tensor(y, dtype=torch.long), idx, len(self.groups_))
        gen = torch.Generator().manual_seed(int(self.random_state) + 1)
        z = torch.randn(len(y), self.z_dim, generator=gen)
        device = getattr(self, "device_", "cpu")
        G = self.generator_.to(device)
        out = []
        with torch.no_grad():
            for start in range(0, len(y), batch_size):
                sl = slice(start, start + batch_size)
                out.append(G(z[sl].to(device), c[sl].to(device)).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, *self.output_shape_), np.float32)

    def generate(self, y: np.ndarray, sensitive_features: pd.DataFrame) -> np.ndarray:
        """Images ``(n, C, H, W)`` in ``[0, 1]``, row ``i`` conditioned on ``y[i]`` and the
        ``group_attribute`` value of row ``i`` of ``sensitive_features`` (deterministic for a
        given fitted model and input)."""
        import torch

        self._check_fitted()
        y = np.asarray(y).reshape(-1)
        if len(y) != len(sensitive_features):
            raise DataError(
                f"{self.name}.generate: {len(y)} labels but {len(sensitive_features)} rows of sensitive features"
            )
        if self.group_attribute not in sensitive_features.columns:
            raise DataError(
                f"{self.name}.generate needs column {self.group_attribute!r} in "
                f"sensitive_features; got {list(sensitive_features.columns)}"
            )
        fake = self._generate_working(y, group_values(sensitive_features, self.group_attribute))
        size = self.output_shape_[-1]
        if fake.shape[-1] != size:
            fake = self._resize(torch.from_numpy(fake), size).numpy()
        return np.clip(fake, 0.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------ persistence
    def _tag(self) -> str:
        """A short name unique to this parameter set (two arms of one run do not collide)."""
        params = json.dumps(self.get_params(), sort_keys=True, default=str)
        return f"{self.name}-{hashlib.sha1(params.encode()).hexdigest()[:8]}"

    def _to(self, device: str) -> None:
        for key in ("generator_", "critic_", "classifier_", "segmenter_"):
            module = getattr(self, key, None)
            if module is not None:
                module.to(device)

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write the generator, critic and frozen critics as safetensors files
        ``<tag>_{generator,critic,classifier,segmenter}.safetensors`` in ``directory``."""
        from fairaudit.training import save_checkpoint

        self._check_fitted()
        directory = Path(directory)
        meta = {
            "plugin": self.name,
            "params": json.dumps(self.get_params(), default=str),
            "groups": json.dumps(self.groups_),
            "output_shape": json.dumps(self.output_shape_),
        }
        written: dict[str, Path] = {}
        for part in ("generator", "critic", "classifier", "segmenter"):
            module = getattr(self, f"{part}_", None)
            if module is None:
                continue
            extra = {}
            if part == "segmenter":
                extra = {
                    "kind": "cafgan_lung_unet",
                    "base_channels": str(self.segmenter_channels),
                    "depth": str(self._segmenter_depth()),
                    "image_size": str(self.image_size),
                    "channels_in": str(self.output_shape_[0]),
                }
            written[part] = save_checkpoint(
                directory / f"{self._tag()}_{part}.safetensors",
                module.state_dict(),
                {**meta, **extra},
            )
        return written

    def _load_segmenter(self, path: Path, device: str) -> torch.nn.Module:
        from safetensors import safe_open

        from fairaudit import CheckpointError
        from fairaudit.training import load_checkpoint
        from fairaudit_cafgan.networks import LungUNet

        state = load_checkpoint(path, device="cpu")
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        if meta.get("kind") != "cafgan_lung_unet":
            raise CheckpointError(f"{path} is not a CAF-GAN lung U-Net checkpoint (metadata kind {meta.get('kind')!r})")
        if int(meta["image_size"]) != self.image_size:
            raise CheckpointError(
                f"segmenter checkpoint {path} was trained at {meta['image_size']} px; "
                f"this model works at image_size={self.image_size}"
            )
        module = LungUNet(
            int(meta["base_channels"]),
            depth=int(meta["depth"]),
            channels_in=int(meta.get("channels_in", 1)),
        )
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"segmenter checkpoint {path} does not match the U-Net: {exc}") from exc
        return module.to(device)

    # ------------------------------------------------------------ report
    def report_blocks(self) -> list[dict[str, Any]]:
        """Sample grid per group x label, training curves and the lung-plausibility table."""
        from fairaudit_cafgan.report import build_sections

        self._check_fitted()
        return build_sections(self)
