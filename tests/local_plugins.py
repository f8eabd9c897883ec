"""Local plugins for tests (loaded through a spec's ``plugins:`` list): some misbehave on purpose, some
are transparent generators whose output is known exactly."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from fairaudit import BaseDebiaser, BaseGenerator, hookimpl
from fairaudit.training import check_finite, load_checkpoint


class MeanDifferenceProjection(BaseDebiaser):
    """Removes the direction between the two group means; sleeps in fit when SLOW_FIT is set
    (so a test can kill the process mid-training) and touches ``marker`` when fit starts."""

    name = "slow_projection"

    def __init__(self, marker: str = ""):
        self.marker = marker

    def fit(self, X, y, *, sensitive_features):
        if self.marker:
            Path(self.marker).write_text("fit started")
        time.sleep(float(os.environ.get("SLOW_FIT", "0")))
        X = np.asarray(X, dtype=np.float64)
        groups = sensitive_features.iloc[:, 0].astype(str).to_numpy()
        a, b = sorted(set(groups))[:2]
        direction = X[groups == a].mean(0) - X[groups == b].mean(0)
        self.direction_ = direction / np.linalg.norm(direction)
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        return (X - np.outer(X @ self.direction_, self.direction_)).astype(np.float32)


class Diverging(BaseDebiaser):
    """A torch loop with a learning rate that makes the loss overflow; stops via check_finite."""

    name = "diverging"

    def fit(self, X, y, *, sensitive_features):
        import torch

        X_t = torch.as_tensor(np.asarray(X, dtype=np.float32))
        y_t = torch.as_tensor(np.asarray(y, dtype=np.float32))
        w = torch.zeros(X_t.shape[1], requires_grad=True)
        opt = torch.optim.SGD([w], lr=1e20)
        for epoch in range(50):
            loss = ((X_t @ w - y_t) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            check_finite(float(loss.detach()), f"diverging epoch {epoch}")
        return self

    def transform(self, X):
        return np.asarray(X)


class FromCheckpoint(BaseDebiaser):
    """Loads its projection from a safetensors file."""

    name = "from_checkpoint"

    def __init__(self, checkpoint: str = ""):
        self.checkpoint = checkpoint

    def fit(self, X, y, *, sensitive_features):
        self.weights_ = load_checkpoint(self.checkpoint)["projection"].numpy()
        return self

    def transform(self, X):
        return np.asarray(X) @ self.weights_


class IdentityEditor(BaseGenerator):
    """'Edits' images by returning them unchanged; logs the edit it was asked for."""

    name = "identity_editor"
    supports_counterfactuals = True

    def __init__(self, log: str = ""):
        self.log = log

    def fit(self, dataset):
        self.calls_ = ["fit"]
        return self

    def generate(self, y, sensitive_features):
        raise NotImplementedError("this editor cannot sample")

    def counterfactual(self, images, edit):
        self.calls_.append("counterfactual")
        Path(self.log).write_text(json.dumps({"factor": edit["factor"], "metadata": sorted(edit["metadata"]),
                                              "n": len(images)}))
        return np.asarray(images)

    def report_blocks(self):
        return [{"kind": "table", "title": "calls", "columns": ["call"], "rows": [[c] for c in self.calls_]}]


@hookimpl
def fairaudit_register_debiasers(registry):
    for cls in (MeanDifferenceProjection, Diverging, FromCheckpoint):
        registry.add(cls)




class DevicePainter(BaseGenerator):
    """A transparent counterfactual editor for synthetic_cxr's support device: removes it by
    filling device-bright pixels with the blurred surrounding anatomy, adds it by pasting a
    device cut out of a training image.  Ground truth for the runner's counterfactual arms."""

    name = "device_painter"
    supports_counterfactuals = True
    threshold = 0.88

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, dataset):
        images = np.asarray(dataset.images, dtype=np.float32)[:, 0]
        bright = images >= self.threshold
        has = bright.reshape(len(images), -1).sum(1) >= 3
        self.cutouts_ = bright[has]
        if not len(self.cutouts_):
            raise ValueError("no training image shows a device to copy")
        return self

    def generate(self, y, sensitive_features):
        raise NotImplementedError("this editor cannot sample")

    def counterfactual(self, images, edit):
        from scipy.ndimage import uniform_filter

        rng = np.random.default_rng(self.random_state)
        out = np.array(images, dtype=np.float32, copy=True)
        for i, img in enumerate(out[:, 0]):
            bright = img >= self.threshold
            if bright.sum() >= 3:  # remove: normalised blur of the non-device pixels
                keep = (~bright).astype(np.float32)
                fill = uniform_filter(img * keep, 7) / np.maximum(uniform_filter(keep, 7), 1e-3)
                out[i, 0] = np.where(bright, fill, img)
            else:  # add: paste a training device
                cut = self.cutouts_[rng.integers(len(self.cutouts_))]
                out[i, 0] = np.where(cut, 0.97, img)
        return out


class CellMeans(BaseGenerator):
    """Samples the mean training image of each (label, sex) cell; logs the conditions it was
    asked for (label and sex of every requested image).  Ground truth for synthetic sampling."""

    name = "cell_means"

    def __init__(self, log: str = ""):
        self.log = log

    def fit(self, dataset):
        images = np.asarray(dataset.images, dtype=np.float32)
        sex = dataset.sensitive["sex"].astype(str).to_numpy()
        self.means_ = {(int(y), s): images[(dataset.y == y) & (sex == s)].mean(axis=0)
                       for y in (0, 1) for s in sorted(set(sex))}
        return self

    def generate(self, y, sensitive_features):
        sex = sensitive_features["sex"].astype(str).to_numpy()
        Path(self.log).write_text(json.dumps({"y": [int(v) for v in y], "sex": sex.tolist()}))
        return np.stack([self.means_[(int(v), s)] for v, s in zip(y, sex, strict=True)])


@hookimpl
def fairaudit_register_generators(registry):
    registry.add(IdentityEditor)
    registry.add(DevicePainter)
    registry.add(CellMeans)
