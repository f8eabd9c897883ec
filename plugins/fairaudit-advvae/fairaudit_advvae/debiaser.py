"""AdversarialVAEDebiaser: a VAE over embeddings whose latent code is made uninformative of
chosen sensitive attributes by a real min-max objective, while a task head keeps the label.

torch is imported inside methods only (``fairaudit --help`` stays fast).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from fairaudit import BaseDebiaser, DataError
from fairaudit_advvae.attributes import AttributeTarget, build_targets, encode_targets

AttributeType = Literal["auto", "binary", "multiclass", "continuous"]


class AdversarialVAEDebiaser(BaseDebiaser):
    """Adversarial VAE debiasing of embeddings (after Zheng et al., MIDL 2025, arXiv 2502.04386).

    A Gaussian VAE encodes each (standardised) embedding into ``mu, logvar``.  Per sensitive
    attribute, a learned MLP adversary and an exact closed-form linear (ridge) adversary try to
    predict the attribute from ``mu``; the encoder is trained against them (alternating min-max
    or gradient reversal) while a task head on ``mu`` keeps the label information.
    ``transform`` returns the decoder's reconstruction of ``mu`` (or ``mu`` itself),
    deterministically.

    Parameters
    ----------
    attributes:
        Columns of ``sensitive_features`` to remove.
    attribute_types:
        Optional ``{column: "binary" | "multiclass" | "continuous" | "auto"}``.  ``auto`` (the
        default for unlisted columns): a numeric column with more than 10 distinct values is
        continuous (MSE adversary on the standardised value), anything else categorical.
    latent_dim:
        Size of the latent code (the paper used 500).
    hidden_dims:
        Hidden widths of the encoder (the decoder mirrors them); ``()`` is the paper's purely
        linear encoder and decoder.
    task_hidden:
        Hidden widths of the task head on ``mu`` (``()``: a linear head).
    beta:
        Weight of the KL term (reconstruction and KL are both per input element).
    lambda_adv:
        Weight of the adversarial term (0 switches the min-max off; adversaries still train, as
        monitors).
    lambda_task:
        Weight of the task head's BCE, which keeps label information in ``mu``.
    adversarial_mode:
        ``"alternating"`` (adversary steps on ``mu.detach()``, then an encoder step against the
        frozen adversaries) or ``"grl"`` (one joint step through a gradient reversal layer).
    adversary_hidden:
        Hidden widths of each adversary MLP (``()``: a linear adversary).
    adversary_steps:
        MLP-adversary updates per encoder step, on random batches of the cached latent means of
        all training rows (in ``grl`` mode one of them is the joint step).
    linear_adversary:
        Also play against the exact linear best response (ridge regression of each attribute on
        ``mu``, re-solved for every step from running sufficient statistics).  It has no lag, so
        the encoder cannot "fool" it by mixing the attribute into other directions.
    lr, adversary_lr:
        Adam learning rates of the VAE (with task head) and of the MLP adversaries.
    lr_schedule:
        ``"cosine"`` decays the VAE's learning rate to 0 over ``max_epochs`` (the residual
        leakage of the min-max game shrinks with the step size); ``"constant"`` keeps it.
    batch_size, max_epochs, patience, min_epochs:
        Mini-batch size; epoch budget; early stopping on the (smoothed) validation objective
        once ``min_epochs`` epochs have run, restoring the best epoch.  With the cosine schedule
        keep ``min_epochs`` at about half of ``max_epochs``: leakage falls as the rate decays.
    val_fraction:
        Share of the training rows held out (stratified by label) for early stopping and the
        final adversary audit; 0 trains on everything without early stopping.
    output:
        ``"reconstruction"`` (decoder output in the input's units and dimension, as in the
        paper), ``"latent"`` (the code ``z`` fed to the decoder) or ``"latent_mean"`` (``mu``).
    stochastic_transform:
        False (default): ``z = mu``, so ``transform`` is deterministic.  True samples
        ``z ~ q(z|x)`` as the published notebook does, from a generator seeded by
        ``random_state`` (reproducible across calls).
    standardize:
        Standardise each input feature with training means and deviations before encoding.
    audit_epochs:
        Epochs of fresh adversaries trained on the final frozen encoder to report leakage
        (``adversary_audit_``); 0 skips it.
    device:
        ``"auto"`` (the run's device, else CUDA when present, else CPU), ``"cpu"``, ``"cuda"``...
    random_state:
        Seed (``None``: the run's seed).
    progress:
        Show a progress bar over epochs; ``None`` (default): the run's setting (off under
        ``fairaudit run -q``).
    """

    name = "advvae"
    description = (
        "Adversarial VAE debiasing of embeddings (gradient reversal or alternating min-max)"
    )
    modalities = frozenset({"features"})
    stage = "pre"

    def __init__(
        self,
        *,
        attributes: tuple[str, ...] = ("sex",),
        attribute_types: dict[str, AttributeType] | None = None,
        latent_dim: int = 128,
        hidden_dims: tuple[int, ...] = (512,),
        task_hidden: tuple[int, ...] = (),
        beta: float = 1.0,
        lambda_adv: float = 1.0,
        lambda_task: float = 1.0,
        adversarial_mode: Literal["grl", "alternating"] = "alternating",
        adversary_hidden: tuple[int, ...] = (64,),
        adversary_steps: int = 5,
        linear_adversary: bool = True,
        lr: float = 1e-3,
        lr_schedule: Literal["cosine", "constant"] = "cosine",
        adversary_lr: float = 2e-3,
        batch_size: int = 128,
        max_epochs: int = 100,
        patience: int = 10,
        min_epochs: int = 50,
        val_fraction: float = 0.15,
        output: Literal["reconstruction", "latent", "latent_mean"] = "reconstruction",
        stochastic_transform: bool = False,
        standardize: bool = True,
        audit_epochs: int = 30,
        device: str = "auto",
        random_state: int | None = None,
        progress: bool | None = None,
    ):
        self.attributes = attributes
        self.attribute_types = attribute_types
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.task_hidden = task_hidden
        self.beta = beta
        self.lambda_adv = lambda_adv
        self.lambda_task = lambda_task
        self.adversarial_mode = adversarial_mode
        self.adversary_hidden = adversary_hidden
        self.adversary_steps = adversary_steps
        self.linear_adversary = linear_adversary
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.adversary_lr = adversary_lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_epochs = min_epochs
        self.val_fraction = val_fraction
        self.output = output
        self.stochastic_transform = stochastic_transform
        self.standardize = standardize
        self.audit_epochs = audit_epochs
        self.device = device
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> None:
        problems = []
        for key in ("latent_dim", "batch_size", "max_epochs", "patience", "adversary_steps"):
            if int(getattr(self, key)) < 1:
                problems.append(f"{key} must be >= 1 (got {getattr(self, key)})")
        for key in ("beta", "lambda_adv", "lambda_task", "min_epochs", "audit_epochs"):
            if getattr(self, key) < 0:
                problems.append(f"{key} must be >= 0 (got {getattr(self, key)})")
        for key in ("lr", "adversary_lr"):
            if not getattr(self, key) > 0:
                problems.append(f"{key} must be > 0 (got {getattr(self, key)})")
        if not 0 <= self.val_fraction < 1:
            problems.append(f"val_fraction must be in [0, 1) (got {self.val_fraction})")
        if self.adversarial_mode not in ("grl", "alternating"):
            problems.append(
                f"adversarial_mode must be 'grl' or 'alternating' (got {self.adversarial_mode!r})"
            )
        if self.output not in ("reconstruction", "latent", "latent_mean"):
            problems.append(
                f"output must be 'reconstruction', 'latent' or 'latent_mean' (got {self.output!r})"
            )
        widths = (*self.hidden_dims, *self.task_hidden, *self.adversary_hidden)
        if any(int(w) < 1 for w in widths):
            problems.append("hidden widths must be >= 1")
        if problems:
            raise ValueError("advvae: " + "; ".join(problems))

    def _seed(self) -> int:
        return self.run_context().training_seed(self.random_state)

    def _device(self) -> str:
        from fairaudit.training import resolve_device

        if (self.device or "auto").lower() == "auto":
            return self.run_context().device  # the run's device (a standalone plugin: CUDA if present)
        return resolve_device(self.device)

    def _check_X(self, X: np.ndarray, n_features: int | None = None) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise DataError(
                f"advvae takes 2-D features (n_samples, n_features); got shape {X.shape}"
            )
        if n_features is not None and X.shape[1] != n_features:
            raise DataError(f"advvae was fitted on {n_features} features; got {X.shape[1]}")
        if not np.all(np.isfinite(X)):
            raise DataError("advvae: X contains NaN or infinite values")
        return X

    def _split(self, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation row indices (validation stratified by label)."""
        n = len(y)
        n_val = round(self.val_fraction * n)
        rows = np.random.default_rng(seed).permutation(n)
        if n_val < 10 or n - n_val < 10:
            return rows, rows[:0]
        from sklearn.model_selection import train_test_split

        stratify = y if np.bincount(y.astype(int), minlength=2).min() >= 2 else None
        train, val = train_test_split(rows, test_size=n_val, random_state=seed, stratify=stratify)
        return train, val  # shuffled order (the leakage probe uses the first rows)

    def _build(self, n_features: int, targets: list[AttributeTarget]) -> Any:
        from fairaudit_advvae.networks import Adversaries, AdvVAE, DebiasingVAE

        vae = DebiasingVAE(
            n_features, int(self.latent_dim), tuple(self.hidden_dims), tuple(self.task_hidden)
        )
        adversaries = Adversaries(
            int(self.latent_dim), [t.n_outputs for t in targets], tuple(self.adversary_hidden)
        )
        return AdvVAE(vae, adversaries)

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.x_mean_) / self.x_scale_).astype(np.float32)

    # ------------------------------------------------------------------ API
    def fit(self, X: np.ndarray, y: np.ndarray, *, sensitive_features: pd.DataFrame) -> Self:
        """Train the VAE, task head and adversaries on ``X`` (n, d), ``y`` and the attributes."""
        from fairaudit.training import is_main_process, seed_everything
        from fairaudit_advvae.trainer import LoopConfig, Split, audit_adversaries, train_advvae

        self._check_params()
        X = self._check_X(X)
        y = np.asarray(y)
        sensitive_features = pd.DataFrame(sensitive_features).reset_index(drop=True)
        if not len(X) == len(y) == len(sensitive_features):
            raise DataError(
                f"advvae: X, y and sensitive_features have different lengths "
                f"({len(X)}, {len(y)}, {len(sensitive_features)})"
            )
        if not set(np.unique(y).tolist()) <= {0, 1}:
            raise DataError("advvae: y must be binary 0/1")
        y = y.astype(np.float32)
        targets = build_targets(sensitive_features, tuple(self.attributes), self.attribute_types)
        T, M = encode_targets(targets, sensitive_features)
        seed = self._seed()
        device = self._device()
        train_rows, val_rows = self._split(y, seed)
        if self.standardize:
            self.x_mean_ = X[train_rows].mean(axis=0)
            std = X[train_rows].std(axis=0)
            self.x_scale_ = np.where(std > 1e-8, std, 1.0).astype(np.float32)
        else:
            self.x_mean_ = np.zeros(X.shape[1], np.float32)
            self.x_scale_ = np.ones(X.shape[1], np.float32)
        Xs = self._scale(X)

        def split(rows: np.ndarray) -> Split:
            return Split(Xs[rows], y[rows], T[rows], M[rows])

        train, val = split(train_rows), (split(val_rows) if len(val_rows) else None)
        seed_everything(seed)
        model = self._build(X.shape[1], targets)
        cfg = LoopConfig(
            beta=float(self.beta),
            lambda_adv=float(self.lambda_adv),
            lambda_task=float(self.lambda_task),
            mode=self.adversarial_mode,
            adversary_steps=int(self.adversary_steps),
            lr=float(self.lr),
            lr_schedule=self.lr_schedule,
            linear_adversary=bool(self.linear_adversary),
            adversary_lr=float(self.adversary_lr),
            batch_size=int(self.batch_size),
            max_epochs=int(self.max_epochs),
            patience=int(self.patience),
            min_epochs=int(self.min_epochs),
            seed=seed,
            device=device,
            progress=self.run_context().progress if self.progress is None else bool(self.progress),
        )
        history, best_epoch = train_advvae(model, targets, train, val, cfg)
        audit: list[dict[str, Any]] = []
        if self.audit_epochs > 0:
            audit = audit_adversaries(
                model.vae,
                targets,
                train,
                val if val is not None else train,
                tuple(self.adversary_hidden),
                int(self.audit_epochs),
                float(self.adversary_lr),
                int(self.batch_size),
                seed,
                device,
            )
        self.module_ = model.to("cpu").eval()
        self.targets_ = targets
        self.n_features_in_ = int(X.shape[1])
        self.history_ = history
        self.best_epoch_ = int(best_epoch)
        self.adversary_audit_ = audit
        self.validation_split_ = "val" if val is not None else "train"
        self.seed_ = seed
        self.device_ = device
        self.checkpoint_path_: str | None = None
        path = self.run_context().checkpoint_path("advvae.safetensors")
        if path is not None and is_main_process():
            self.checkpoint_path_ = str(self.save(path))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Debiased features: the reconstruction of ``mu`` (default), ``z`` or ``mu``."""
        import torch
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "module_")
        X = self._scale(self._check_X(X, self.n_features_in_))
        device = self._device()
        vae = self.module_.vae.to(device).eval()
        generator = None
        if self.stochastic_transform and self.output != "latent_mean":
            generator = torch.Generator(device=device)
            generator.manual_seed(self.seed_)
        parts = []
        with torch.no_grad():
            for start in range(0, len(X), 4096):
                xb = torch.as_tensor(X[start : start + 4096], device=device)
                mu, logvar = vae.encode(xb)
                if self.output == "latent_mean":
                    parts.append(mu.cpu().numpy())
                    continue
                z = mu
                if generator is not None:
                    eps = torch.randn(mu.shape, generator=generator, device=device, dtype=mu.dtype)
                    z = mu + eps * torch.exp(0.5 * logvar)
                if self.output == "latent":
                    parts.append(z.cpu().numpy())
                else:
                    parts.append(vae.decode(z).cpu().numpy() * self.x_scale_ + self.x_mean_)
        self.module_.to("cpu")
        width = self.n_features_in_ if self.output == "reconstruction" else int(self.latent_dim)
        out = np.concatenate(parts) if parts else np.empty((0, width), np.float32)
        return out.astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted debiaser to one safetensors file (weights plus JSON config)."""
        from fairaudit_advvae.persistence import save_debiaser

        return save_debiaser(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AdversarialVAEDebiaser:
        """Read a debiaser written by :meth:`save`; ``transform`` gives identical output."""
        from fairaudit_advvae.persistence import load_debiaser

        return load_debiaser(cls, path)

    # ------------------------------------------------------------------ report
    def report_blocks(self) -> list[dict[str, Any]]:
        """Training curves (kind ``curve``) and the final adversaries' scores (kind ``table``)."""
        from fairaudit_advvae.sections import build_sections

        if not hasattr(self, "history_"):
            return []
        return build_sections(self)

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        tiny = {
            "latent_dim": 8,
            "hidden_dims": (16,),
            "adversary_hidden": (8,),
            "batch_size": 64,
            "max_epochs": 3,
            "min_epochs": 1,
            "patience": 2,
            "audit_epochs": 2,
            "progress": False,
            "device": "cpu",
            "random_state": 0,
        }
        return [
            tiny,
            {**tiny, "adversarial_mode": "grl", "hidden_dims": (), "output": "latent_mean"},
        ]
