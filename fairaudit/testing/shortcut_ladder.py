"""A graded-shortcut ladder: classifiers with known device reliance, for validating shortcut metrics.

Each rung is a logistic regression on the pixels of ``synthetic_cxr`` phantoms trained at one
``shortcut_strength`` (how strongly the support device marks the disease in training).  All rungs
are scored on one test split where the device is independent of the label.  A rung's *true
reliance* is measured with the dataset's oracle: the share of test images whose decision changes
when only the device is flipped (exact re-render, nothing else changes).  A shortcut metric is
valid when it ranks the rungs as the oracle does (Spearman correlation with ``true_reliance``).

:func:`imperfect_counterfactuals` degrades the oracle's device edits the way a generator does
(failed edits, faded edits, pixel noise), and :func:`paint_device` is an independent editor
(removes the device by inpainting, adds one cut from another image elsewhere), to check a
metric on generated counterfactuals too.

>>> ladder = build_ladder(strengths=(0.0, 0.5, 1.0))
>>> [round(r.true_reliance, 2) for r in ladder.rungs]  # doctest: +SKIP
[0.06, 0.45, 1.0]
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fairaudit.base import CounterfactualSets, MetricContext, StatsConfig
from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR, device_oracle

__all__ = [
    "PixelClassifier",
    "Rung",
    "ShortcutLadder",
    "build_ladder",
    "imperfect_counterfactuals",
    "paint_device",
    "spearman",
]

#: Default ladder: from no tie between device and disease to the device marking it exactly.
STRENGTHS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class PixelClassifier:
    """Picklable ``predict_fn``: positive-class probability of a fitted scikit-learn model on
    the flattened pixels."""

    model: object

    def __call__(self, images: np.ndarray) -> np.ndarray:
        flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
        return np.asarray(self.model.predict_proba(flat)[:, 1])  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Rung:
    """One classifier of the ladder and its oracle-measured device reliance."""

    strength: float
    predict_fn: PixelClassifier
    #: Share of test images whose decision changes under the oracle device flip.
    true_reliance: float
    #: Mean |score change| under the oracle device flip.
    true_score_shift: float
    auc: float


@dataclass
class ShortcutLadder:
    """The test split, its oracle counterfactuals and the rungs."""

    images: np.ndarray
    y: np.ndarray
    sensitive: pd.DataFrame
    patient_ids: np.ndarray
    #: Oracle counterfactuals of the test images by factor (``"device"``, ``"disease"``).
    oracle: dict[str, np.ndarray]
    rungs: list[Rung] = field(default_factory=list)

    @property
    def true_reliance(self) -> np.ndarray:
        return np.array([r.true_reliance for r in self.rungs])

    def context(self, rung: Rung, counterfactuals: dict[str, np.ndarray], n_boot: int = 50) -> MetricContext:
        """A metric context for ``rung`` with the given counterfactual sets (keys as in a run:
        ``"oracle:device"`` for the oracle's, ``"device"`` for a generator's)."""
        return MetricContext(
            y_true=self.y,
            sensitive=self.sensitive,
            patient_ids=self.patient_ids,
            images=self.images,
            counterfactuals=CounterfactualSets.from_labelled(counterfactuals),
            predict_fn=rung.predict_fn,
            artefact_oracle=device_oracle,
            attributes=["sex"],
            stats=StatsConfig(n_boot=n_boot, min_group_size=5),
        )


def _classifier(model: str, C: float, seed: int) -> object:
    if model == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=C, max_iter=2000)
    if model == "mlp":
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(hidden_layer_sizes=(32,), alpha=1.0, max_iter=300, random_state=seed)
    raise ValueError(f"model must be 'logistic' or 'mlp', got {model!r}")


def _phantoms(n: int, size: int, seed: int, strength: float, disease_strength: float) -> SyntheticCXR:
    return SyntheticCXR(n_samples=n, image_size=size, seed=seed, shortcut_strength=strength,
                        device_rate=0.5, disease_strength=disease_strength)


def build_ladder(
    strengths: Sequence[float] = STRENGTHS,
    *,
    n_train: int = 600,
    n_test: int = 400,
    image_size: int = 32,
    disease_strength: float = 0.2,
    C: float = 0.1,
    model: str = "logistic",
    seed: int = 0,
) -> ShortcutLadder:
    """Train one pixel logistic regression per shortcut strength and measure its true reliance.

    Training sets share ``seed`` (the same patients; only the device draws follow the strength);
    the test split (seed ``seed + 1000``, strength 0) has the device independent of the label.
    A faint disease (``disease_strength``) makes the device worth using.  ``model``:
    ``"logistic"`` (L2, ``C``; about 0.2 s a rung at 32 px on one core) or ``"mlp"`` (one hidden
    layer of 32, a few seconds a rung).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import roc_auc_score

    test_loader = _phantoms(n_test, image_size, seed + 1000, 0.0, disease_strength)
    test = test_loader.load()
    index = np.arange(n_test)
    oracle = {f: test_loader.render_counterfactual(index, f) for f in ("device", "disease")}
    ladder = ShortcutLadder(np.asarray(test.images), np.asarray(test.y), test.sensitive,
                            np.asarray(test.patient_ids), oracle)
    for s in strengths:
        train = _phantoms(n_train, image_size, seed, float(s), disease_strength).load()
        clf = _classifier(model, C, seed)
        with warnings.catch_warnings():  # the MLP may stop at max_iter: a rung, not a tuned model
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(np.asarray(train.images, np.float64).reshape(n_train, -1), train.y)  # type: ignore[attr-defined]
        fn = PixelClassifier(clf)
        p0, p1 = fn(ladder.images), fn(oracle["device"])
        flips = float(np.mean((p0 >= 0.5) != (p1 >= 0.5)))
        ladder.rungs.append(Rung(float(s), fn, flips, float(np.mean(np.abs(p1 - p0))),
                                 float(roc_auc_score(ladder.y, p0))))
    return ladder


def imperfect_counterfactuals(
    original: np.ndarray,
    target: np.ndarray,
    *,
    fail_rate: float = 0.0,
    fade: tuple[float, float] = (1.0, 1.0),
    noise_sd: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A generator's version of the oracle edit ``original -> target``.

    Per image: with probability ``fail_rate`` the edit is not made (the original comes back);
    otherwise a fraction ``u ~ U(fade)`` of it is made (``original + u (target - original)``, so a
    faded device may no longer pass the artefact detector); then Gaussian pixel noise of SD
    ``noise_sd`` everywhere, clipped to ``[0, 1]``.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(original, np.float64)
    n = len(x)
    u = rng.uniform(fade[0], fade[1], n) * (rng.random(n) >= fail_rate)
    out = x + u[:, None, None, None] * (np.asarray(target, np.float64) - x)
    if noise_sd > 0:
        out = out + rng.normal(0.0, noise_sd, out.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def paint_device(images: np.ndarray, donors: np.ndarray, *, threshold: float = 0.88, seed: int = 0) -> np.ndarray:
    """An independent device editor (not the oracle): where an image shows the device, fill its
    bright pixels with the normalised blur of the surrounding anatomy; elsewhere paste (at 0.97)
    the bright pixels of a random ``donors`` image that shows one, so the new device has another
    shape and place than the oracle's.  ``images``, ``donors``: ``(n, 1, H, W)`` in ``[0, 1]``."""
    from scipy.ndimage import uniform_filter

    rng = np.random.default_rng(seed)
    bright_donors = np.asarray(donors, np.float32)[:, 0] >= threshold
    cutouts = bright_donors[bright_donors.reshape(len(bright_donors), -1).sum(1) >= 3]
    if not len(cutouts):
        raise ValueError("no donor image shows a device to copy")
    out = np.array(images, dtype=np.float32, copy=True)
    for i, img in enumerate(out[:, 0]):
        bright = img >= threshold
        if bright.sum() >= 3:
            keep = (~bright).astype(np.float32)
            fill = uniform_filter(img * keep, 7) / np.maximum(uniform_filter(keep, 7), 1e-3)
            out[i, 0] = np.where(bright, fill, img)
        else:
            out[i, 0] = np.where(cutouts[rng.integers(len(cutouts))], 0.97, img)
    return out


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (NaN when either side is constant)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)
