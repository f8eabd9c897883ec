"""Synthetic foundation-model embeddings with known demographic subspaces (ground truth).

Every row is the sum of latent-factor codes written into random, non-axis-aligned orthonormal
subspaces of ``R^dim``, plus patient-level nuisance structure and isotropic noise::

    X = U_label c_label + U_sex c_sex + U_age c_age + U_race c_race + U_nuis c_nuis + noise

The sex subspace is *entangled* with the label subspace: its mean-shift direction has cosine
``entanglement`` with the label direction, so erasing sex costs a little task signal and no
single coordinate carries either.  ``meta["ground_truth"]`` holds the bases and directions.

Regimes where mitigations should differ (ground truth in ``meta["ground_truth"]``):

- ``sex_nonlinear > 0``: men spread ``1 + sex_nonlinear`` times wider than women inside the
  sex subspace (orthogonal to the mean shift), a variance signal that linear erasure (LEACE,
  INLP) leaves and only a non-linear probe or eraser can see; with ``sex_signal: 0`` it is the
  only sex signal.
- ``label_group_correlation != 0``: prevalence differs by sex, so the label itself predicts sex
  and the sex group means differ along the label direction too; removing sex (linearly or
  not) must then remove task signal, and the task AUC drops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairaudit.base import BaseDatasetLoader
from fairaudit.builtin.datasets._groups import (
    AGE_GROUPS,
    Bins,
    age_group,
    binned_extras,
    check_bins,
    draw_age,
    flip_rates,
    patient_layout,
)
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError

#: Label noise used when ``group_label_noise`` is left as ``None``.
DEFAULT_GROUP_LABEL_NOISE: dict[str, float] = {"sex=F": 0.1}
FACTORS = ("label", "sex", "age", "race", "nuisance")
RACES = ("A", "B", "C")


class SyntheticEmbeddings(BaseDatasetLoader):
    """CT-Foundation-like embeddings (default 1408-d) built from disease, sex, age and race.

    Parameters
    ----------
    n_samples, dim, seed:
        Rows, embedding width, and the seed every draw derives from.
    images_per_patient:
        Rows per patient (they share demographics, disease and nuisance code).
    prevalence:
        Mean disease prevalence.
    label_signal, sex_signal, age_signal, race_signal:
        Separation of the factor's codes in units of the noise SD (0 = factor absent from ``X``).
        Age is written linearly and quadratically (per SD of age); race as three group means.
    sex_nonlinear:
        Extra within-subspace spread of males (variance signal only a non-linear probe sees).
    signal_dims:
        Dimension of each factor's subspace (capped at ``dim // 5``).
    entanglement:
        Cosine between the sex and label mean-shift directions, in ``[0, 1)``.
    label_group_correlation:
        Prevalence difference ``P(y=1 | M) - P(y=1 | F)`` of the true label.
    group_label_noise:
        Flip rate of the *observed* label per group, e.g. ``{"sex=F": 0.2}`` or ``{"C": 0.1}``;
        ``None`` uses ``{"sex=F": 0.1}``, ``{}`` none.
    label_noise_mode:
        ``"symmetric"`` flips either way; ``"false_negative"`` only hides true positives
        (under-diagnosis).
    noise_scale, nuisance_dims, nuisance_scale:
        Isotropic noise SD; rank and SD of the patient-level nuisance structure.
    male_fraction, race_proportions, age_range:
        Demographic mix.
    bins:
        Groups cut from the continuous ``age`` (years), e.g. ``{age: [0, 50, 65, 120]}`` or
        ``{age: {edges: [...], labels: [...]}}``: adds the attribute ``age`` (``age_group``
        keeps the fixed bins <50, 50-65, >65).
    """

    name = "synthetic_embeddings"
    modality = "features"
    description = ("Synthetic CT-Foundation-like embeddings with known sex/age/race subspaces, "
                   "label-group correlation and group-dependent label noise.")

    def __init__(
        self,
        *,
        n_samples: int = 2000,
        dim: int = 1408,
        seed: int = 0,
        images_per_patient: int = 1,
        prevalence: float = 0.3,
        label_signal: float = 3.0,
        sex_signal: float = 4.0,
        age_signal: float = 1.5,
        race_signal: float = 1.5,
        sex_nonlinear: float = 0.0,
        signal_dims: int = 8,
        entanglement: float = 0.3,
        label_group_correlation: float = 0.0,
        group_label_noise: dict[str, float] | None = None,
        label_noise_mode: Literal["symmetric", "false_negative"] = "symmetric",
        noise_scale: float = 1.0,
        nuisance_dims: int = 32,
        nuisance_scale: float = 3.0,
        male_fraction: float = 0.5,
        race_proportions: tuple[float, float, float] = (0.6, 0.25, 0.15),
        age_range: tuple[float, float] = (30.0, 90.0),
        bins: Bins | None = None,
    ):
        self.n_samples = n_samples
        self.dim = dim
        self.seed = seed
        self.images_per_patient = images_per_patient
        self.prevalence = prevalence
        self.label_signal = label_signal
        self.sex_signal = sex_signal
        self.age_signal = age_signal
        self.race_signal = race_signal
        self.sex_nonlinear = sex_nonlinear
        self.signal_dims = signal_dims
        self.entanglement = entanglement
        self.label_group_correlation = label_group_correlation
        self.group_label_noise = group_label_noise
        self.label_noise_mode = label_noise_mode
        self.noise_scale = noise_scale
        self.nuisance_dims = nuisance_dims
        self.nuisance_scale = nuisance_scale
        self.male_fraction = male_fraction
        self.race_proportions = race_proportions
        self.age_range = age_range
        self.bins = bins

    # ------------------------------------------------------------------ contract
    def check(self, base_dir: Path) -> list[str]:
        problems = []
        if self.n_samples < 2:
            problems.append(f"n_samples must be >= 2, got {self.n_samples}")
        if self.dim < 5:
            problems.append(f"dim must be >= 5 (one dimension per factor), got {self.dim}")
        if not 0.0 <= self.entanglement < 1.0:
            problems.append(f"entanglement must lie in [0, 1), got {self.entanglement}")
        p_f, p_m = self._prevalences()
        if not (0.0 <= p_f <= 1.0 and 0.0 <= p_m <= 1.0):
            problems.append(f"prevalence {self.prevalence} with label_group_correlation "
                            f"{self.label_group_correlation} gives P(y|F)={p_f:.2f}, "
                            f"P(y|M)={p_m:.2f}, outside [0, 1]")
        props = np.asarray(self.race_proportions, dtype=float)
        if len(props) != 3 or np.any(props < 0) or props.sum() <= 0:
            problems.append("race_proportions must be 3 non-negative numbers, "
                            f"got {self.race_proportions}")
        problems += check_bins(self.bins, ["age"], "continuous attributes")
        return problems

    def load(self) -> AuditDataset:
        problems = self.check(Path.cwd())
        if problems:
            raise DataError(f"{self.name}: " + "; ".join(problems))
        rng = np.random.default_rng(self.seed)
        n = self.n_samples
        bases = subspace_bases(self.dim, self.signal_dims, self.nuisance_dims,
                               self.entanglement, rng)
        k = bases["label"].shape[1]
        w = _unit(rng.normal(size=k))  # mean-shift direction (shared by label and sex)
        w_age2 = _orthogonal_unit(w, rng)

        # ---- patients and their latent factors
        pid = patient_layout(n, self.images_per_patient, rng)
        n_pat = int(pid.max()) + 1
        male_p = rng.random(n_pat) < self.male_fraction
        age_p = draw_age(rng, n_pat, *self.age_range)
        props = np.asarray(self.race_proportions, dtype=float)
        race_p = rng.choice(3, size=n_pat, p=props / props.sum())
        p_f, p_m = self._prevalences()
        y_true_p = (rng.random(n_pat) < np.where(male_p, p_m, p_f)).astype(np.int64)
        nuis_p = rng.normal(size=(n_pat, bases["nuisance"].shape[1])) * self.nuisance_scale
        male, age, race, y_true = male_p[pid], age_p[pid], race_p[pid], y_true_p[pid]

        sensitive = pd.DataFrame({
            "sex": np.where(male, "M", "F").astype(object),
            "age_group": age_group(age),
            "race": np.asarray(RACES, dtype=object)[race],
        })

        # ---- observed label: group-dependent flips
        noise = self.group_label_noise
        if noise is None:
            noise = DEFAULT_GROUP_LABEL_NOISE
        categories = {"sex": ["F", "M"], "age_group": list(AGE_GROUPS), "race": list(RACES)}
        rate = flip_rates(noise, sensitive, categories, self.name)
        if self.label_noise_mode == "false_negative":
            rate = np.where(y_true == 1, rate, 0.0)
        flipped = rng.random(n) < rate
        y = np.where(flipped, 1 - y_true, y_true).astype(np.int64)

        # ---- codes in each subspace
        age_z = (age - age.mean()) / max(float(age.std()), 1e-9)
        race_means = _race_means(k, self.race_signal, props / props.sum(), rng)
        spread = rng.normal(size=(n, k)) * 0.5 * (1.0 + self.sex_nonlinear * male)[:, None]
        spread -= np.outer(spread @ w, w)  # keep the sex mean-shift direction clean
        if not self.sex_nonlinear:
            spread[:] = 0.0
        codes = {
            "label": np.outer((y_true - 0.5) * self.label_signal, w),
            "sex": np.outer((male - 0.5) * self.sex_signal, w) + spread,
            "age": self.age_signal * (np.outer(age_z, w) + 0.5 * np.outer(age_z**2 - 1.0, w_age2)),
            "race": race_means[race],
            "nuisance": nuis_p[pid],
        }
        X = rng.normal(size=(n, self.dim)) * self.noise_scale
        for factor, code in codes.items():
            X += code @ bases[factor].T
        directions = {f: bases[f] @ w for f in ("label", "sex", "age")}

        ground_truth: dict[str, Any] = {
            "factors": {
                "label": "disease (true label y_true; mean shift along directions['label'])",
                "sex": "binary F/M; mean shift along directions['sex']; with sex_nonlinear > 0 men's "
                       "codes spread (1 + sex_nonlinear) times wider in bases['sex'] (variance signal)",
                "age": "continuous; linear along directions['age'] and quadratic in the same basis",
                "race": "3 group means (A/B/C) in bases['race']",
                "nuisance": "patient-level variation unrelated to any attribute",
            },
            "bases": bases,
            "directions": directions,
            "signal_dims": k,
            "cosine_sex_label": float(directions["sex"] @ directions["label"]),
            "prevalence_by_sex": {"F": p_f, "M": p_m},
            "label_sex_correlation": ("P(y=1|M) - P(y=1|F) = label_group_correlation; when non-zero, "
                                      "erasing sex must remove task signal"),
            "group_label_noise": dict(noise),
            "params": self.get_params(),
        }
        return AuditDataset(
            name=self.name,
            X=X.astype(np.float32),
            y=y,
            sensitive=binned_extras(sensitive, {"age": age}, self.bins, self.name),
            patient_ids=np.asarray([f"P{p:05d}" for p in pid], dtype=object),
            extras={"age": age.astype(np.float64), "y_true": y_true,
                    "label_flipped": flipped.astype(np.int64)},
            meta={"description": self.description, "label_name": "disease",
                  "ground_truth": ground_truth},
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{"n_samples": 200, "dim": 32, "seed": 0},
                {"n_samples": 120, "dim": 24, "seed": 1, "images_per_patient": 3,
                 "sex_signal": 0.0, "group_label_noise": {}}]

    # ------------------------------------------------------------------ helpers
    def _prevalences(self) -> tuple[float, float]:
        half = self.label_group_correlation / 2.0
        return float(self.prevalence - half), float(self.prevalence + half)


def subspace_bases(dim: int, signal_dims: int, nuisance_dims: int, entanglement: float,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Orthonormal bases (``dim x k``) of every factor's subspace, random and non-axis-aligned.

    Label, age, race and nuisance subspaces are mutually orthogonal; the sex basis is
    ``c * U_label + sqrt(1 - c^2) * U_sex_own`` with ``c = entanglement`` (still orthonormal).
    """
    k = max(1, min(signal_dims, dim // 5))
    m = max(0, min(nuisance_dims, dim - 4 * k))
    q, _ = np.linalg.qr(rng.normal(size=(dim, 4 * k + m)))
    c = float(entanglement)
    return {
        "label": q[:, :k],
        "sex": c * q[:, :k] + np.sqrt(1.0 - c * c) * q[:, k:2 * k],
        "age": q[:, 2 * k:3 * k],
        "race": q[:, 3 * k:4 * k],
        "nuisance": q[:, 4 * k:4 * k + m],
    }


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _orthogonal_unit(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(w) == 1:
        return w.copy()
    v = rng.normal(size=len(w))
    return _unit(v - (v @ w) * w)


def _race_means(k: int, signal: float, props: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Three group means in ``R^k`` with pairwise distance ``signal``, centred on the population."""
    if k >= 2:
        basis, _ = np.linalg.qr(rng.normal(size=(k, 2)))
        # vertices of an equilateral triangle with side 1
        tri = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
        means = tri @ basis.T
    else:
        means = np.array([[0.0], [1.0], [0.5]])
    means = means * signal
    return means - props @ means
