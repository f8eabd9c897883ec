"""``alphashift``: latent alpha-shift explanations and mitigation (Minutti, NeurIPS-W 2024).

Images are encoded by a small ShuffleNet-style denoising beta-VAE; for each bias attribute
(e.g. view AP/PA, a support-device artefact, sex) the direction ``zbar_1 - zbar_0`` between
group-mean latents is estimated on the training split.  ``transform`` returns latent means
(what the downstream head consumes); ``transform_train`` adds copies shifted by random
``alpha`` along the bias directions so that a head retrained on them cannot use those
directions (the paper's "randomise alpha and retrain only the head").  Decoding
``z + alpha d`` for a sweep of ``alpha`` gives the visual explanation.  Two-dimensional
inputs (embeddings) skip the autoencoder and are shifted directly.

torch is imported inside methods only, so registering the plugin stays cheap.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from fairaudit import BaseDebiaser, DataError
from fairaudit_alphashift.shift import BiasDirection, compute_direction, randomised_shifts

if TYPE_CHECKING:
    import torch


class AlphaShiftDebiaser(BaseDebiaser):
    """Alpha-shift along latent bias directions of a lightweight beta-VAE.

    Parameters
    ----------
    bias_attributes:
        Columns of ``sensitive_features`` whose directions are randomised (default: all).
        Categorical or numeric 0/1 columns; missing values are ignored.
    alpha_max:
        ``alpha ~ U(-alpha_max, alpha_max)`` for the training augmentation.
    n_augment:
        Shifted copies added to the training representation by :meth:`transform_train`.
    direction:
        ``"conditional"`` (group difference within label strata, robust to shortcuts) or
        ``"marginal"`` (the paper's plain ``zbar_1 - zbar_0``).
    image_size, latent_dim, width, depth, groups:
        Autoencoder input side (power of two), latent size, channel multiplier (``1.0`` is
        about 1.4 M parameters at 128 px), multiplier of the stride-1 units per stage (``0``
        keeps only the resampling units) and pointwise-convolution groups.
    beta, ssim_weight, mse_weight:
        Loss ``ssim_weight * (1 - SSIM) + mse_weight * MSE + beta * KL / pixels``.
    erase_prob:
        Probability of random erasing per training image (denoising objective).
    attention, attention_penalty:
        Learn the per-pixel loss-weight map ``W`` (attention ``1 - W``) and the weight of
        ``(mean(W) - 1)^2``.
    max_epochs, batch_size, lr, val_fraction, patience:
        Adam optimisation with early stopping on a held-out fraction of the training images.
    sweep_alphas:
        Alphas of the report's sweep grid.
    device:
        ``"auto"`` (the run's device, else CUDA when present), ``"cpu"``, ``"cuda"``...
    random_state:
        Seed of training and of the alpha draws.
    progress:
        Show progress bars; ``None`` (default): the run's setting (off under ``fairaudit run -q``).
    """

    name: ClassVar[str] = "alphashift"
    description: ClassVar[str] = (
        "Latent alpha-shift along bias directions of a ShuffleNet-style beta-VAE: visual "
        "explanations and head retraining with randomised shifts (Minutti 2024)."
    )
    modalities: ClassVar[frozenset[str]] = frozenset({"images", "features"})
    stage: ClassVar[Literal["pre", "in", "post"]] = "pre"

    def __init__(
        self,
        *,
        bias_attributes: list[str] | None = None,
        alpha_max: float = 2.0,
        n_augment: int = 4,
        direction: Literal["conditional", "marginal"] = "conditional",
        image_size: int = 128,
        latent_dim: int = 128,
        width: float = 1.0,
        depth: float = 1.0,
        groups: int = 4,
        beta: float = 1.0,
        ssim_weight: float = 1.0,
        mse_weight: float = 0.5,
        erase_prob: float = 0.5,
        attention: bool = True,
        attention_penalty: float = 1.0,
        max_epochs: int = 30,
        batch_size: int = 32,
        lr: float = 1e-3,
        val_fraction: float = 0.1,
        patience: int = 5,
        sweep_alphas: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0),
        device: str = "auto",
        random_state: int = 0,
        progress: bool | None = None,
    ):
        self.bias_attributes = bias_attributes
        self.alpha_max = alpha_max
        self.n_augment = n_augment
        self.direction = direction
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.width = width
        self.depth = depth
        self.groups = groups
        self.beta = beta
        self.ssim_weight = ssim_weight
        self.mse_weight = mse_weight
        self.erase_prob = erase_prob
        self.attention = attention
        self.attention_penalty = attention_penalty
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.val_fraction = val_fraction
        self.patience = patience
        self.sweep_alphas = sweep_alphas
        self.device = device
        self.random_state = random_state
        self.progress = progress

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        tiny = {"image_size": 16, "latent_dim": 8, "width": 0.125, "max_epochs": 2,
                "batch_size": 16, "n_augment": 1, "device": "cpu", "progress": False}
        return [tiny, {**tiny, "direction": "marginal", "attention": False, "mse_weight": 1.0,
                       "ssim_weight": 0.0, "alpha_max": 1.0}]

    # ------------------------------------------------------------------ fitting
    def fit(self, X: np.ndarray, y: np.ndarray, *, sensitive_features: pd.DataFrame) -> Self:
        """Train the autoencoder (images) and estimate the bias directions on this split."""
        self._check_params()
        X = np.asarray(X)
        y = np.asarray(y)
        sensitive = _as_frame(sensitive_features)
        if not (len(X) == len(y) == len(sensitive)):
            raise DataError(f"alphashift: X, y and sensitive_features differ in length "
                            f"({len(X)}, {len(y)}, {len(sensitive)})")
        attributes = self._resolve_attributes(sensitive)
        self.bias_attributes_ = attributes
        self.fit_key_ = self._param_key()
        images = None
        if X.ndim == 2:
            self.input_kind_ = "features"
            self.vae_ = None
            self.train_report_ = None
            Z = X.astype(np.float32)
        elif X.ndim in (3, 4):
            self.input_kind_ = "images"
            images = self._prepare_images(X)
            Z = self._fit_autoencoder(images)
        else:
            raise DataError("alphashift expects features (n, d) or images (n, 1, H, W); "
                            f"got {X.shape}")
        self.n_features_out_ = int(Z.shape[1])
        self.directions_: list[BiasDirection] = [
            compute_direction(Z, sensitive[col], y, attribute=col, mode=self.direction)
            for col in attributes
        ]
        self.latent_scale_ = float(np.sqrt(np.mean(np.var(Z, axis=0))))
        self.sweep_examples_: dict[str, tuple[np.ndarray, list[str]]] = {}
        if images is not None:
            for d in self.directions_:
                self.sweep_examples_[d.attribute] = _examples(images, sensitive[d.attribute],
                                                              [d.reference, d.levels[0]])
        return self

    def _fit_autoencoder(self, images: np.ndarray) -> np.ndarray:
        from fairaudit.training import save_checkpoint, seed_everything
        from fairaudit_alphashift.model import ShuffleVAE, count_parameters
        from fairaudit_alphashift.train import TrainConfig, train_autoencoder

        seed = self.run_context().training_seed(self.random_state)  # a later repeat: its own seed
        seed_everything(seed)
        self.device_ = self._device()
        vae = ShuffleVAE(self.image_size, self.latent_dim, self.width, self.groups, self.attention,
                         self.depth)
        cfg = TrainConfig(beta=self.beta, ssim_weight=self.ssim_weight, mse_weight=self.mse_weight,
                          erase_prob=self.erase_prob, attention_penalty=self.attention_penalty,
                          max_epochs=self.max_epochs, batch_size=self.batch_size, lr=self.lr,
                          val_fraction=self.val_fraction, patience=self.patience,
                          seed=seed,
                          progress=self.run_context().progress if self.progress is None else bool(self.progress),
                          mixed_precision=self.run_context().mixed_precision)
        self.train_report_ = train_autoencoder(vae, images, cfg, self.device_)
        self.vae_ = vae
        self.n_parameters_ = count_parameters(vae)
        path = self.run_context().checkpoint_path(f"{self.fit_key_}.safetensors")
        self.checkpoint_ = None
        if path is not None:
            meta = {"image_size": str(self.image_size), "latent_dim": str(self.latent_dim),
                    "width": str(self.width), "depth": str(self.depth), "groups": str(self.groups),
                    "attention": str(self.attention)}
            self.checkpoint_ = str(save_checkpoint(path, vae.state_dict(), metadata=meta))
        return self._encode(images)

    def _check_params(self) -> None:
        if self.direction not in ("conditional", "marginal"):
            raise ValueError("direction must be 'conditional' or 'marginal', "
                             f"got {self.direction!r}")
        if self.alpha_max < 0 or self.n_augment < 0:
            raise ValueError("alpha_max and n_augment must be >= 0")
        if self.latent_dim < 1 or self.width <= 0 or self.groups < 1 or self.depth < 0:
            raise ValueError("latent_dim, width and groups must be positive and depth >= 0")
        if not 0 <= self.val_fraction < 1:
            raise ValueError("val_fraction must be in [0, 1)")

    def _resolve_attributes(self, sensitive: pd.DataFrame) -> list[str]:
        wanted = list(self.bias_attributes) if self.bias_attributes else list(sensitive.columns)
        missing = [c for c in wanted if c not in sensitive.columns]
        if missing:
            raise DataError(f"alphashift: bias attribute(s) {missing} not in sensitive_features; "
                            f"available: {list(sensitive.columns)}")
        if not wanted:
            raise DataError("alphashift needs at least one bias attribute "
                            "(sensitive_features is empty)")
        return wanted

    def _device(self) -> str:
        from fairaudit.training import resolve_device

        requested = self.device
        if requested == "auto":
            requested = self.run_context().device  # the run's device (a standalone plugin: CUDA if present)
        return resolve_device(requested)

    def _param_key(self) -> str:
        params = {k: v for k, v in self.get_params().items() if k not in ("progress", "device")}
        digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
        return f"alphashift-{digest[:8]}"

    # ------------------------------------------------------------------ images
    def _prepare_images(self, X: np.ndarray) -> np.ndarray:
        """``(n, [C,] H, W)`` in [0, 1] -> float32 ``(n, 1, S, S)`` (grayscale, resized)."""
        images = np.asarray(X, dtype=np.float32)
        if images.ndim == 3:
            images = images[:, None]
        if images.shape[1] != 1:
            images = images.mean(axis=1, keepdims=True)
        if images.size and (np.nanmin(images) < -1e-3 or np.nanmax(images) > 1.0 + 1e-3):
            raise DataError("alphashift expects images scaled to [0, 1]")
        if not np.isfinite(images).all():
            raise DataError("alphashift: images contain NaN or inf")
        if images.shape[-2:] != (self.image_size, self.image_size):
            import torch
            from torch.nn import functional as F

            t = torch.as_tensor(images)
            out = []
            for start in range(0, len(t), 256):
                out.append(F.interpolate(t[start:start + 256], size=(self.image_size,) * 2,
                                         mode="bilinear", align_corners=False, antialias=True))
            images = torch.cat(out).clamp_(0.0, 1.0).numpy()
        return np.ascontiguousarray(images, dtype=np.float32)

    def _encode(self, images: np.ndarray) -> np.ndarray:
        import torch

        assert self.vae_ is not None
        self.vae_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(images), 256):
                batch = torch.as_tensor(images[start:start + 256]).to(self.device_)
                out.append(self.vae_.encode(batch)[0].cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.latent_dim),
                                                                            np.float32)

    def decode(self, Z: np.ndarray) -> np.ndarray:
        """Images ``(n, 1, S, S)`` in [0, 1] decoded from latent codes."""
        import torch

        self._require_images("decode")
        assert self.vae_ is not None
        self.vae_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(Z), 256):
                chunk = np.asarray(Z[start:start + 256], np.float32)
                batch = torch.as_tensor(chunk).to(self.device_)
                out.append(self.vae_.decode(batch).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1, self.image_size, self.image_size),
                                                        np.float32)

    def _require_images(self, what: str) -> None:
        _check_is_fitted(self)
        if self.input_kind_ != "images":
            raise DataError(f"alphashift.{what} needs the autoencoder; this instance was fitted "
                            "on features (n, d), which have no decoder")

    # ------------------------------------------------------------------ transform
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Latent means (images) or the embeddings themselves (features), float32 ``(n, d)``."""
        _check_is_fitted(self)
        X = np.asarray(X)
        if self.input_kind_ == "features":
            if X.ndim != 2 or X.shape[1] != self.n_features_out_:
                raise DataError(f"alphashift was fitted on features with {self.n_features_out_} "
                                f"columns; got shape {X.shape}")
            return X.astype(np.float32)
        if X.ndim not in (3, 4):
            raise DataError(f"alphashift was fitted on images; got shape {X.shape}")
        return self._encode(self._prepare_images(X))

    def transform_train(
        self, X: np.ndarray, y: np.ndarray, *, sensitive_features: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """The training representation plus ``n_augment`` copies with random alpha shifts along
        every bias direction (rows of ``y`` and ``sensitive_features`` repeated alike)."""
        Z = self.transform(X)
        sensitive = _as_frame(sensitive_features)
        if not (len(Z) == len(y) == len(sensitive)):
            raise DataError("alphashift.transform_train: X, y and sensitive_features differ "
                            "in length")
        rng = np.random.default_rng(self.run_context().training_seed(self.random_state) + 1)
        return randomised_shifts(Z, np.asarray(y), sensitive, self.directions_,
                                 n_augment=self.n_augment, alpha_max=self.alpha_max, rng=rng)

    def direction_for(self, attribute: str, level: str | None = None) -> np.ndarray:
        """The fitted direction of ``attribute`` (towards ``level``; default: the first level)."""
        _check_is_fitted(self)
        for d in self.directions_:
            if d.attribute == attribute:
                if level is None:
                    return d.main
                if str(level) not in d.levels:
                    raise DataError(f"alphashift: {attribute!r} has no level {level!r} "
                                    f"(levels {d.levels}, reference {d.reference!r})")
                return d.vectors[d.levels.index(str(level))]
        raise DataError(f"alphashift: no direction for {attribute!r}; "
                        f"fitted: {self.bias_attributes_}")

    def alpha_sweep(self, images: np.ndarray, attribute: str,
                    alphas: list[float] | tuple[float, ...] | np.ndarray | None = None,
                    level: str | None = None) -> np.ndarray:
        """Decode ``z + alpha d`` for each alpha: ``(n, len(alphas), 1, S, S)`` in [0, 1]."""
        self._require_images("alpha_sweep")
        alphas = np.asarray(self.sweep_alphas if alphas is None else alphas, dtype=np.float32)
        vector = self.direction_for(attribute, level)
        Z = self.transform(images)
        shifted = Z[:, None, :] + alphas[None, :, None] * vector[None, None, :]
        decoded = self.decode(shifted.reshape(-1, Z.shape[1]))
        return decoded.reshape(len(Z), len(alphas), *decoded.shape[1:])

    def attention_map(self) -> np.ndarray | None:
        """``1 - W`` as ``(S, S)`` (positive where the loss was down-weighted), or ``None``."""
        self._require_images("attention_map")
        assert self.vae_ is not None
        w = self.vae_.weight_map()
        return None if w is None else (1.0 - w.detach().cpu().numpy()[0, 0]).astype(np.float32)

    def report_blocks(self) -> list[dict[str, Any]]:
        """Tables (reconstruction quality, directions) and, in a run folder, the alpha-sweep
        grid per bias attribute and the attention map."""
        from fairaudit_alphashift.figures import build_sections

        _check_is_fitted(self)
        return build_sections(self)

    def vae_module(self) -> torch.nn.Module:
        """The trained autoencoder (images only)."""
        self._require_images("vae_module")
        assert self.vae_ is not None
        return self.vae_


def _examples(images: np.ndarray, column: pd.Series, levels: list[str],
              per_level: int = 2) -> tuple[np.ndarray, list[str]]:
    """Up to ``per_level`` images of each of ``levels`` (first rows, deterministic)."""
    from fairaudit_alphashift.shift import level_labels

    labels, _ = level_labels(column)
    rows, names = [], []
    for lv in levels:
        idx = np.flatnonzero(labels == lv)[:per_level]
        rows.extend(idx.tolist())
        names.extend([f"{column.name}={lv}"] * len(idx))
    return images[np.asarray(rows, dtype=int)].copy(), names


def _as_frame(sensitive: pd.DataFrame | pd.Series | np.ndarray) -> pd.DataFrame:
    if isinstance(sensitive, pd.DataFrame):
        return sensitive.reset_index(drop=True)
    if isinstance(sensitive, pd.Series):
        return sensitive.reset_index(drop=True).to_frame(name=sensitive.name or "group")
    arr = np.asarray(sensitive)
    if arr.ndim == 1:
        return pd.DataFrame({"group": arr})
    return pd.DataFrame(arr, columns=[f"group{i}" for i in range(arr.shape[1])])


def _check_is_fitted(est: AlphaShiftDebiaser) -> None:
    """scikit-learn's fitted check, imported on use (importing the plugin stays light)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
