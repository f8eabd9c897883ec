"""Independent judges of generated images: networks the generator was never trained against.

CAF-GAN's own critics (the frozen diagnostic CNN and lung U-Net) are what its generator
minimises, so scoring its samples with them is circular (a texture can fool the critic it
was optimised against).  :class:`Judges` are trained afresh on a *separate* real sample
(other images, other seeds, other architecture or width, no critic augmentation):

* **segmenter**: a lung U-Net (narrower and shallower than the clinical critic); its masks of
  generated images give the implausible-mask rate (bounds from the judge sample's true masks);
* **reader**: the built-in small CNN (``cnn``), one for the finding and one for the group;
  fidelity = how well they recover the label / group each generated image was conditioned on
  (AUC; real held-out images give the ceiling);
* **two-sample test** (optional): a logistic regression telling real from generated images
  (cross-validated AUC; 0.5 = indistinguishable to it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from fairaudit import AuditDataset


def _reader(seed: int, epochs: int) -> Any:
    from fairaudit.builtin.models.cnn import SmallCNN

    return SmallCNN(channels=[8, 16, 32], lr=1e-2, patience=6, max_epochs=epochs, device="cpu", random_state=seed)


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores)) if len(np.unique(y)) == 2 else float("nan")


@dataclass
class Judges:
    """Independent segmenter and readers, trained by :meth:`fit` on a real sample with masks.

    ``group_attribute`` must have exactly two groups in the judge sample (the group reader
    is binary)."""

    group_attribute: str = "sex"
    seed: int = 1000
    segmenter_channels: int = 6
    segmenter_depth: int = 2
    segmenter_epochs: int = 10
    reader_epochs: int = 25
    two_sample_test: bool = True
    fitted: dict[str, Any] = field(default_factory=dict, repr=False)

    def fit(self, data: AuditDataset) -> Judges:
        """Train the judges on ``data`` (real images with lung masks)."""
        import torch

        from fairaudit_cafgan.critics import CriticSettings, train_segmenter
        from fairaudit_cafgan.generator import group_values
        from fairaudit_cafgan.plausibility import plausibility_reference

        if data.masks is None:
            raise ValueError("Judges.fit needs a dataset with lung masks (data.masks is None)")
        images = np.asarray(data.images, np.float32)
        groups = group_values(data.sensitive, self.group_attribute)
        names = sorted(set(groups.tolist()))
        if len(names) != 2:
            raise ValueError(f"Judges need exactly two groups of {self.group_attribute!r}; got {names}")
        settings = CriticSettings(epochs=self.segmenter_epochs, batch_size=32, lr=2e-3, device="cpu",
                                  seed=self.seed, augment=False)
        segmenter, history = train_segmenter(torch.from_numpy(images), torch.from_numpy(np.asarray(data.masks)),
                                             base_channels=self.segmenter_channels, depth=self.segmenter_depth,
                                             settings=settings)
        self.fitted = {
            "segmenter": segmenter,
            "segmenter_dice": history[-1]["dice"],
            "bounds": plausibility_reference(np.asarray(data.masks)),
            "label_reader": _reader(self.seed, self.reader_epochs).fit(images, np.asarray(data.y)),
            "group_reader": _reader(self.seed + 1, self.reader_epochs).fit(images, (groups == names[1]).astype(int)),
            "groups": names,
            "real_flat": images.reshape(len(images), -1),
        }
        return self

    def score(self, images: np.ndarray, y: np.ndarray, sensitive: pd.DataFrame) -> dict[str, float]:
        """Judge ``images`` conditioned on labels ``y`` and ``sensitive`` (generated, or real
        held-out images for the ceiling): implausible-mask rate, label and group AUC of the
        readers against the conditions, and the two-sample-test AUC against the judge sample."""
        import torch

        from fairaudit_cafgan.critics import predict_in_batches
        from fairaudit_cafgan.generator import group_values
        from fairaudit_cafgan.plausibility import lung_plausibility

        if not self.fitted:
            raise RuntimeError("Judges.score before Judges.fit")
        f = self.fitted
        images = np.asarray(images, np.float32)
        masks = predict_in_batches(f["segmenter"], torch.from_numpy(images), "cpu").numpy()
        plaus = lung_plausibility(masks, f["bounds"])
        groups = group_values(sensitive, self.group_attribute)
        out = {
            "implausible_rate": plaus["rate"],
            "reader_label_auc": _auc(np.asarray(y), f["label_reader"].predict_proba(images)),
            "reader_group_auc": _auc((groups == f["groups"][1]).astype(int), f["group_reader"].predict_proba(images)),
        }
        if self.two_sample_test:
            out["c2st_auc"] = two_sample_auc(f["real_flat"], images.reshape(len(images), -1), seed=self.seed)
        return out


def two_sample_auc(real: np.ndarray, other: np.ndarray, seed: int = 0, folds: int = 3) -> float:
    """Cross-validated AUC of an L2 logistic regression telling ``real`` rows from ``other``
    rows (equal numbers drawn from each): 0.5 when it cannot tell them apart."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    rng = np.random.default_rng(seed)
    n = min(len(real), len(other))
    X = np.concatenate([real[rng.choice(len(real), n, replace=False)], other[rng.choice(len(other), n, replace=False)]])
    y = np.repeat([0, 1], n)
    p = cross_val_predict(LogisticRegression(C=0.01, max_iter=500), X, y, cv=folds, method="predict_proba")[:, 1]
    return _auc(y, p)
