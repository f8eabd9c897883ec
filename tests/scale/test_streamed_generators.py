"""Generators on streamed image folders: same results as in memory, memory that does not grow
with the number of images (CAF-GAN decodes per batch, diffusion encodes latents per block)."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairaudit.builtin.datasets.image_folder import ImageFolderDataset
from fairaudit.data import AuditDataset
from fairaudit.lazy_images import LazyImages

pytest.importorskip("fairaudit_cafgan")

PARAMS = {"target": "label", "sensitive": ["sex"], "patient_id": "patient"}
CAFGAN = {"image_size": 32, "z_dim": 8, "base_channels": 4, "n_steps": 2, "batch_size": 16, "n_critic": 2,
          "classifier_epochs": 1, "segmenter_epochs": 0, "critic_channels": 4, "lambda_clinic": 0.0,
          "fair_per_group": 2, "device": "cpu", "progress": False}
DIFFUSION = {"model_dir": "tiny://32", "finetune": "lora", "lr": 1e-3, "max_steps": 2, "batch_size": 4,
             "resolution": 32, "device": "cpu", "progress": False}


def write_folder(folder: Path, n: int, size: int) -> Path:
    """``n`` grey PNGs of ``size`` px (a brighter disc for label 1) with ``metadata.csv``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    yy, xx = np.mgrid[:size, :size] / size
    disc = ((yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.1).astype(np.float64)
    rows = []
    for i in range(n):
        label = i % 2
        pixels = np.clip(60 + 80 * label * disc + rng.normal(0, 20, (size, size)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
        rows.append({"path": f"{i:04d}.png", "label": label, "sex": "FM"[(i // 2) % 2], "patient": f"p{i}"})
    pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)
    return folder / "metadata.csv"


def load(meta: Path, size: int, stream: bool) -> AuditDataset:
    return ImageFolderDataset(metadata=str(meta), image_size=size, stream=stream, **PARAMS).load()


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("small"), 40, 48)


def _fit_cafgan(dataset: AuditDataset) -> object:
    from fairaudit_cafgan import CAFGAN as Model

    return Model(**CAFGAN).fit(dataset)


def _fit_diffusion(dataset: AuditDataset) -> object:
    pytest.importorskip("diffusers")
    from fairaudit_diffusion import DiffusionCounterfactuals

    return DiffusionCounterfactuals(**DIFFUSION).fit(dataset)


def test_cafgan_trains_identically_on_a_streamed_folder(small_folder):
    eager, lazy = load(small_folder, 48, False), load(small_folder, 48, True)
    assert isinstance(lazy.images, LazyImages)
    a, b = _fit_cafgan(eager), _fit_cafgan(lazy)
    for key in ("critic_loss", "wasserstein", "generator_adversarial"):
        np.testing.assert_allclose([h[key] for h in b.history_], [h[key] for h in a.history_], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([h["loss"] for h in b.classifier_history_],
                               [h["loss"] for h in a.classifier_history_], rtol=1e-5)
    y, sens = eager.y[:6], eager.sensitive.iloc[:6]
    np.testing.assert_allclose(b.generate(y, sens), a.generate(y, sens), atol=1e-5)
    for cell, images in a.examples_.items():
        np.testing.assert_allclose(b.examples_[cell], images, atol=1e-6)


def test_diffusion_fine_tunes_identically_on_a_streamed_folder(small_folder):
    eager, lazy = load(small_folder, 48, False), load(small_folder, 48, True)
    a, b = _fit_diffusion(eager), _fit_diffusion(lazy)
    np.testing.assert_allclose(b.train_log_.losses, a.train_log_.losses, rtol=1e-5)
    assert b.eval_loss_before_ == pytest.approx(a.eval_loss_before_, rel=1e-6)
    np.testing.assert_array_equal(b.report_images_, a.report_images_)
    assert b.image_shape_ == a.image_shape_ == (1, 48, 48)


def _peak_numpy_bytes(fit, dataset: AuditDataset) -> int:
    """Peak of traced (numpy and Python) allocations while ``fit`` runs; torch's own
    allocations are not traced, so the streamed path must not build numpy copies."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fit(dataset)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fit", [_fit_cafgan, pytest.param(_fit_diffusion, marks=pytest.mark.slow)],
                         ids=["cafgan", "diffusion"])
def test_peak_memory_of_a_streamed_fit_grows_far_less_than_the_images(tmp_path, fit):
    """64 vs 192 images at 128 px (one block vs three): the images grow by 8.4 MB (float32);
    the fit's traced peak grows by less than a tenth of that (reading them whole would add at
    least their size)."""
    size, small_n, large_n = 128, 64, 192
    small = load(write_folder(tmp_path / "a", small_n, size), size, True)
    large = load(write_folder(tmp_path / "b", large_n, size), size, True)
    fit(small.subset(np.arange(16)))  # warm-up: imports, the tiny pipeline's cache
    growth = _peak_numpy_bytes(fit, large) - _peak_numpy_bytes(fit, small)
    images_growth = (large_n - small_n) * size * size * 4
    assert growth < 0.1 * images_growth, f"peak grew {growth / 1e6:.2f} MB for {images_growth / 1e6:.1f} MB of images"


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4 for the child's peak RSS")
@pytest.mark.parametrize("model", ["cafgan", "diffusion"])
def test_peak_rss_of_a_streamed_fit_stays_flat(tmp_path, model):
    """Peak RSS of a child process fitting on 100 vs 800 images at 256 px (183 MB of float32
    pixels more): it grows by less than a quarter of that (measured: +2 MiB for CAF-GAN and
    +3 MiB for diffusion; +265 and +311 MiB when the split was read whole)."""
    import subprocess
    import sys

    module, name, params = {"cafgan": ("fairaudit_cafgan", "CAFGAN", CAFGAN),
                            "diffusion": ("fairaudit_diffusion", "DiffusionCounterfactuals", DIFFUSION)}[model]
    if model == "diffusion":
        pytest.importorskip("diffusers")
    script = (
        "import sys, torch; torch.set_num_threads(1)\n"
        "from fairaudit.builtin.datasets.image_folder import ImageFolderDataset\n"
        f"from {module} import {name}\n"
        f"ds = ImageFolderDataset(metadata=sys.argv[1], image_size=256, stream=True, **{PARAMS!r}).load()\n"
        f"{name}(**{params!r}).fit(ds)\n"
    )

    def peak_rss(meta: Path) -> int:
        child = subprocess.Popen([sys.executable, "-c", script, str(meta)], env=os.environ.copy())
        _, status, usage = os.wait4(child.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        return usage.ru_maxrss * 1024  # kilobytes on Linux

    small = peak_rss(write_folder(tmp_path / "a", 100, 256))
    large = peak_rss(write_folder(tmp_path / "b", 800, 256))
    images_growth = 700 * 256 * 256 * 4
    assert large - small < 0.25 * images_growth, f"RSS grew by {(large - small) / 1e6:.0f} MB"
