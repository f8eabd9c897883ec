"""Procedural chest-radiograph phantoms with a controllable shortcut and oracle counterfactuals.

Each image shows a body outline, two lung fields whose size and shape depend on sex and age,
a heart (magnified on AP films), ribs, disease opacities inside the lungs when the disease is
present, and optionally a support device (a bright tube and box) whose prevalence can be tied
to the label, and to one sex (the shortcut).  Patient-level draws come from the generator
seeded with ``(seed, 0, patient)`` and image-level draws from ``(seed, 1, row)``, so
``dataset.counterfactual(factor, rows)`` re-renders exactly the same sample with one factor
flipped: ``"sex"``, ``"device"``, ``"view"`` or ``"disease"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairaudit.base import BaseDatasetLoader
from fairaudit.builtin.datasets._groups import AGE_GROUPS, Bins, age_group, binned_extras, check_bins, flip_rates
from fairaudit.builtin.datasets._phantom import (
    MAX_BLOBS,
    PhantomParams,
    Style,
    device_pixels,
    render,
)
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError

COUNTERFACTUAL_FACTORS = ("sex", "device", "view", "disease")
_N_PATIENT_DRAWS = 10
_N_IMAGE_DRAWS = 12 + 5 * MAX_BLOBS


def device_oracle(images: np.ndarray) -> np.ndarray:
    """1 where an image shows the support-device artefact, else 0 (any image source).

    A detector matched to the artefact: the device is the only structure brighter than the
    anatomy, so an image carries it when enough pixels exceed that brightness (0.25 % of the
    image, at least 3 pixels).  ``images``: ``(n, C, H, W)``, ``(n, H, W)`` or ``(H, W)`` in
    ``[0, 1]``.
    """
    arr = np.asarray(images)
    h, w = arr.shape[-2:]
    needed = max(3, round(0.0025 * h * w))
    return (device_pixels(arr) >= needed).astype(np.int64)


class SyntheticCXR(BaseDatasetLoader):
    """Chest-radiograph phantoms (default 64 px) with exact lung masks and a counterfactual oracle.

    Parameters
    ----------
    n_samples, image_size, seed:
        Images, side length in pixels (32-256), and the seed every draw derives from.
    images_per_patient:
        Consecutive rows per patient (same sex, age, anatomy and disease; new view, device,
        ribs, opacities and noise).
    prevalence, label_group_correlation:
        Disease prevalence and ``P(y=1 | M) - P(y=1 | F)``.
    group_label_noise:
        Flip rate of the observed label per group (``{"sex=F": 0.2}``); images show the true
        disease (``extras["y_true"]``).
    disease_strength:
        Peak contrast of the opacities.
    underdiagnosis_group, underdiagnosis_strength:
        Underdiagnosis regime: in ``underdiagnosis_group`` (``"F"``/``"M"``, ``None`` = off) the
        opacities are drawn at ``1 - underdiagnosis_strength`` of their contrast, so the disease
        is harder to see in that group (the image, not the label, carries the bias; flipping
        ``sex`` in a counterfactual changes the contrast with it, so a generator could fix it).
    device_rate, shortcut_strength, shortcut_group:
        Base rate of the device; with strength ``s``, ``P(device | y=1) = r + s (1 - r)`` and
        ``P(device | y=0) = r (1 - s)``; ``shortcut_group`` (``"M"``, ``"F"`` or ``None`` = all)
        limits the correlation to one sex (the others keep rate ``r``).
    ap_rate, view_label_correlation:
        Base rate of AP films and its tie to the label, as for the device.
    male_fraction, age_range:
        Demographic mix (age: normal around the range's middle, clipped).
    noise_level:
        Pixel noise SD.
    bins:
        Groups cut from the continuous ``age`` (years), e.g. ``{age: [0, 50, 65, 120]}`` or
        ``{age: {edges: [...], labels: [...]}}``: adds the attribute ``age`` (``age_group``
        keeps the fixed bins <50, 50-65, >65).
    """

    name = "synthetic_cxr"
    modality = "images"
    description = ("Procedural chest-radiograph phantoms with exact lung masks, a label- and "
                   "group-tied support-device shortcut and oracle counterfactuals.")

    def __init__(
        self,
        *,
        n_samples: int = 512,
        image_size: int = 64,
        seed: int = 0,
        images_per_patient: int = 1,
        prevalence: float = 0.4,
        label_group_correlation: float = 0.0,
        group_label_noise: dict[str, float] | None = None,
        disease_strength: float = 0.35,
        underdiagnosis_group: str | None = None,
        underdiagnosis_strength: float = 0.0,
        device_rate: float = 0.3,
        shortcut_strength: float = 0.0,
        shortcut_group: str | None = None,
        ap_rate: float = 0.3,
        view_label_correlation: float = 0.0,
        male_fraction: float = 0.5,
        age_range: tuple[float, float] = (30.0, 90.0),
        noise_level: float = 0.02,
        bins: Bins | None = None,
    ):
        self.n_samples = n_samples
        self.image_size = image_size
        self.seed = seed
        self.images_per_patient = images_per_patient
        self.prevalence = prevalence
        self.label_group_correlation = label_group_correlation
        self.group_label_noise = group_label_noise
        self.disease_strength = disease_strength
        self.underdiagnosis_group = underdiagnosis_group
        self.underdiagnosis_strength = underdiagnosis_strength
        self.device_rate = device_rate
        self.shortcut_strength = shortcut_strength
        self.shortcut_group = shortcut_group
        self.ap_rate = ap_rate
        self.view_label_correlation = view_label_correlation
        self.male_fraction = male_fraction
        self.age_range = age_range
        self.noise_level = noise_level
        self.bins = bins

    # ------------------------------------------------------------------ contract
    def check(self, base_dir: Path) -> list[str]:
        problems = []
        if self.n_samples < 1:
            problems.append(f"n_samples must be >= 1, got {self.n_samples}")
        if not 32 <= self.image_size <= 256:
            problems.append(f"image_size must lie in [32, 256], got {self.image_size}")
        if self.seed < 0:
            problems.append(f"seed must be >= 0, got {self.seed}")
        if self.images_per_patient < 1:
            problems.append(f"images_per_patient must be >= 1, got {self.images_per_patient}")
        for label, value in (("shortcut_strength", self.shortcut_strength),
                             ("view_label_correlation", self.view_label_correlation),
                             ("device_rate", self.device_rate), ("ap_rate", self.ap_rate),
                             ("underdiagnosis_strength", self.underdiagnosis_strength),
                             ("male_fraction", self.male_fraction)):
            if not 0.0 <= value <= 1.0:
                problems.append(f"{label} must lie in [0, 1], got {value}")
        p_f, p_m = self._prevalences()
        if not (0.0 <= p_f <= 1.0 and 0.0 <= p_m <= 1.0):
            problems.append(f"prevalence {self.prevalence} with label_group_correlation "
                            f"{self.label_group_correlation} gives P(y|F)={p_f:.2f}, "
                            f"P(y|M)={p_m:.2f}, outside [0, 1]")
        if self.shortcut_group not in (None, "F", "M", "sex=F", "sex=M"):
            problems.append(f"shortcut_group must be 'F', 'M' or null, got {self.shortcut_group!r}")
        if self.underdiagnosis_group not in (None, "F", "M", "sex=F", "sex=M"):
            problems.append(f"underdiagnosis_group must be 'F', 'M' or null, got {self.underdiagnosis_group!r}")
        problems += check_bins(self.bins, ["age"], "continuous attributes")
        return problems

    def load(self) -> AuditDataset:
        problems = self.check(Path.cwd())
        if problems:
            raise DataError(f"{self.name}: " + "; ".join(problems))
        index = np.arange(self.n_samples)
        params, factors = self.draw(index)
        images, masks, _ = render(params, self._style())
        pid = index // self.images_per_patient
        sensitive = pd.DataFrame({"sex": np.where(params.male == 1, "M", "F").astype(object),
                                  "age_group": age_group(params.age)})
        p_f, p_m = self._prevalences()
        ground_truth: dict[str, Any] = {
            "factors": {
                "disease": "opacities inside the lungs (true label extras['y_true'])",
                "sex": "body width, lung size and shape, breast shadows",
                "age": "lung height (hyperinflation), rib contrast",
                "view": "AP: magnified heart, lower contrast (extras['view'], 1 = AP)",
                "device": "bright tube and box (extras['device']); detect with device_oracle",
            },
            "masks": "lung fields excluding the heart shadow, exact (rendering geometry)",
            "prevalence_by_sex": {"F": p_f, "M": p_m},
            "device_probability": {"y=0": self._tied(self.device_rate, self.shortcut_strength, 0),
                                   "y=1": self._tied(self.device_rate, self.shortcut_strength, 1),
                                   "group": self._shortcut_sex()},
            "view_probability": {"y=0": self._tied(self.ap_rate, self.view_label_correlation, 0),
                                 "y=1": self._tied(self.ap_rate, self.view_label_correlation, 1)},
            "underdiagnosis": {"group": self._faint_sex(),
                               "visibility": 1.0 - self.underdiagnosis_strength if self._faint_sex() else 1.0,
                               "meaning": "opacity contrast in the group relative to the others; the label "
                                          "is unchanged, so the disease is harder to detect there"},
            "params": self.get_params(),
        }
        return AuditDataset(
            name=self.name,
            y=factors["y"],
            sensitive=binned_extras(sensitive, {"age": params.age}, self.bins, self.name),
            patient_ids=np.asarray([f"P{p:05d}" for p in pid], dtype=object),
            images=images,
            masks=masks,
            extras={"view": params.view.astype(np.int64),
                    "device": params.device.astype(np.int64),
                    "age": params.age.astype(np.float64),
                    "y_true": params.disease.astype(np.int64)},
            meta={"description": self.description, "label_name": "disease",
                  "counterfactual_factors": list(COUNTERFACTUAL_FACTORS),
                  "artefact_oracle": device_oracle, "artefact": "device",
                  "ground_truth": ground_truth},
            oracle=CXROracle(self),
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{"n_samples": 24, "image_size": 32, "seed": 0},
                {"n_samples": 16, "image_size": 64, "seed": 1, "shortcut_strength": 1.0,
                 "images_per_patient": 2}]

    # ------------------------------------------------------------------ sampling
    def draw(self, index: np.ndarray) -> tuple[PhantomParams, dict[str, np.ndarray]]:
        """Rendering parameters and observed label of the rows ``index`` (original positions)."""
        index = np.asarray(index, dtype=np.int64)
        size = self.image_size
        pid = index // self.images_per_patient
        pat = np.empty((len(index), _N_PATIENT_DRAWS))
        img = np.empty((len(index), _N_IMAGE_DRAWS))
        noise = np.empty((len(index), size, size), dtype=np.float32)
        for i, (row, patient) in enumerate(zip(index.tolist(), pid.tolist(), strict=True)):
            pat[i] = np.random.default_rng([self.seed, 0, patient]).random(_N_PATIENT_DRAWS)
            rng = np.random.default_rng([self.seed, 1, row])
            img[i] = rng.random(_N_IMAGE_DRAWS)
            noise[i] = rng.standard_normal((size, size), dtype=np.float32)
        from scipy.special import ndtri

        gauss = ndtri(np.clip(pat[:, 3:10], 1e-9, 1 - 1e-9))  # patient jitters ~ N(0, 1)
        male = (pat[:, 0] < self.male_fraction).astype(np.int64)
        low, high = self.age_range
        z_age = ndtri(np.clip(pat[:, 1], 1e-9, 1 - 1e-9))
        age = np.clip((low + high) / 2 + (high - low) / 4.5 * z_age, low, high)
        p_f, p_m = self._prevalences()
        y_true = (pat[:, 2] < np.where(male == 1, p_m, p_f)).astype(np.int64)

        noise_map = self.group_label_noise or {}
        sens = pd.DataFrame({"sex": np.where(male == 1, "M", "F"), "age_group": age_group(age)})
        rate = flip_rates(noise_map, sens, {"sex": ["F", "M"], "age_group": list(AGE_GROUPS)},
                          self.name)
        y = np.where(img[:, 0] < rate, 1 - y_true, y_true).astype(np.int64)

        p_ap = self._tied(self.ap_rate, self.view_label_correlation, y)
        view = (img[:, 1] < p_ap).astype(np.int64)
        p_dev = self._tied(self.device_rate, self.shortcut_strength, y)
        group = self._shortcut_sex()
        if group is not None:
            p_dev = np.where(male == (group == "M"), p_dev, self.device_rate)
        device = (img[:, 2] < p_dev).astype(np.int64)

        blobs = img[:, 12:].reshape(len(index), MAX_BLOBS, 5)
        n_blobs = 1 + np.minimum((img[:, 5] * MAX_BLOBS).astype(np.int64), MAX_BLOBS - 1)
        params = PhantomParams(
            male=male, age=age, disease=y_true, device=device, view=view,
            body_jitter=gauss[:, 0], lung_jitter=gauss[:, 1:5], heart_jitter=gauss[:, 5:7],
            rib_phase=img[:, 3], rib_freq=img[:, 4],
            blobs=blobs, n_blobs=n_blobs, tube=img[:, 6:10], box=img[:, 10:12],
            noise=noise,
        )
        return params, {"y": y, "y_true": y_true}

    def render_counterfactual(self, index: np.ndarray, factor: str) -> np.ndarray:
        """Images of rows ``index`` with ``factor`` flipped and every other draw kept."""
        params, _ = self.draw(index)
        flips = {"sex": "male", "device": "device", "view": "view", "disease": "disease"}
        if factor not in flips:
            raise DataError(f"{self.name}: cannot flip factor {factor!r}; "
                            f"choose one of {list(COUNTERFACTUAL_FACTORS)}")
        field = flips[factor]
        params = params.with_values(**{field: 1 - getattr(params, field)})
        images, _, _ = render(params, self._style())
        return images

    # ------------------------------------------------------------------ helpers
    def _style(self) -> Style:
        faint = self._faint_sex()
        return Style(size=self.image_size, disease_strength=self.disease_strength,
                     noise_level=self.noise_level, faint_male=None if faint is None else int(faint == "M"),
                     faint_factor=1.0 - self.underdiagnosis_strength)

    def _faint_sex(self) -> str | None:
        return None if self.underdiagnosis_group is None else self.underdiagnosis_group.split("=")[-1]

    def _prevalences(self) -> tuple[float, float]:
        half = self.label_group_correlation / 2.0
        return float(self.prevalence - half), float(self.prevalence + half)

    def _shortcut_sex(self) -> str | None:
        return None if self.shortcut_group is None else self.shortcut_group.split("=")[-1]

    @staticmethod
    def _tied(rate: float, strength: float, y: Any) -> Any:
        """``P(event | y)``: ``r + s (1 - r)`` for ``y = 1``, ``r (1 - s)`` for ``y = 0``."""
        p = np.where(np.asarray(y) == 1, rate + strength * (1.0 - rate), rate * (1.0 - strength))
        return p if np.ndim(p) else float(p)


class CXROracle:
    """Picklable counterfactual oracle: ``oracle(original_indices, factor) -> images``."""

    def __init__(self, loader: SyntheticCXR):
        self.loader = loader

    def __call__(self, index: np.ndarray, factor: str) -> np.ndarray:
        return self.loader.render_counterfactual(np.asarray(index), factor)
