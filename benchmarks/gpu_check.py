"""One command that checks every CUDA path of fairaudit and measures it.

    python benchmarks/gpu_check.py                  # on a CUDA machine: full size (< 8 min on one GPU)
    python benchmarks/gpu_check.py --dry-run        # tiny sizes, a few steps each (what CI and the tests run)
    python benchmarks/gpu_check.py --json out.json  # where the table goes as JSON (default: reports/gpu_check/)

For the downstream MLP and CNN, advvae, alpha-shift, CAF-GAN, the tiny diffusion pipeline (with
gradient checkpointing, EMA, a warm-up + cosine LR schedule, checkpoints and validation grids in a
run folder, then an img2img edit) and the built-in ``torch_checkpoint`` densenet121 (``train:
full`` fine-tuning, and the evaluation throughput of a saved checkpoint) it runs with and without
bf16 autocast (a model without mixed precision says so in its row) and checks, from hooks on
every module call, that each module's parameters and inputs sit on the chosen device (no silent
CPU fallback) and which dtype the layers computed in; that the loss falls (mean of the first
quarter of the trainer's loss history against the last quarter); and it records samples/s
(items drawn from the trainers' DataLoaders, or torch_checkpoint's image blocks, per second of
``fit``), peak memory (``torch.cuda.max_memory_allocated`` on CUDA, the process's peak RSS on
CPU) and the share of ``fit`` spent waiting for data
(DataLoader iteration and streamed-image decoding).  Then it runs one small audit end to end
through ``fairaudit.audit.runner.run_audit`` with ``device: cuda`` (``cpu`` without CUDA) and
the 2-rank DDP path (``torchrun --nproc_per_node 2 -m fairaudit run SPEC``: NCCL, or gloo when
NCCL refuses two ranks on one GPU; gloo on CPU).

Without CUDA it runs the same code paths on CPU at tiny size (``--dry-run`` implied), ends
with a line saying no CUDA was found and exits 0 when every check passed.  Exit code 1 means a
check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import warnings
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NO_CUDA_LINE = "no CUDA was found: ran the CPU dry run (same code paths, tiny sizes)"


# ------------------------------------------------------------------ measuring one fit
class Probe:
    """Hooks around one ``fit``: device of every module's parameters and inputs (first call of
    each module), dtype of the outputs of layers with weights, DataLoader time and items,
    wall time and peak memory."""

    def __init__(self, device: str):
        self.device_type = device.split(":")[0]
        self.wrong: Counter[str] = Counter()
        self.dtypes: Counter[str] = Counter()
        self.modules_checked = 0
        self.samples = 0
        self.batches = 0
        self.data_seconds = 0.0
        self.seconds = 0.0
        self.peak_bytes = 0
        self.start_bytes = 0
        self._has_weights: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
        self._depth = 0

    # -- hooks
    def _where(self, tensor: Any) -> str | None:
        import torch

        if isinstance(tensor, torch.Tensor) and tensor.device.type != self.device_type:
            return tensor.device.type
        return None

    def _forward_hook(self, module: Any, args: tuple[Any, ...], output: Any) -> None:
        has_weights = self._has_weights.get(module)
        if has_weights is None:
            has_weights = self._first_call(module, args)
        if has_weights and getattr(output, "is_floating_point", None) and output.is_floating_point():
            self.dtypes[str(output.dtype).replace("torch.", "")] += 1

    def _first_call(self, module: Any, args: tuple[Any, ...]) -> bool:
        own = list(module.parameters(recurse=False))
        self._has_weights[module] = bool(own)
        self.modules_checked += 1
        name = type(module).__name__
        for p in own:
            where = self._where(p)
            if where:
                self.wrong[f"{name} weights on {where}"] += 1
                break
        for a in args:
            where = self._where(a)
            if where:
                self.wrong[f"{name} input on {where}"] += 1
                break
        return bool(own)

    def _timed(self, fn: Callable[..., Any], count: bool) -> Callable[..., Any]:
        probe = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            probe._depth += 1
            start = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
            finally:
                probe._depth -= 1
                if probe._depth == 0:
                    probe.data_seconds += time.perf_counter() - start
            if count:
                probe.batches += 1
                probe.samples += _batch_len(out)
            return out

        return wrapper

    def _timed_blocks(self, blocks: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        """Wrap a generator of ``(positions, tensor)`` blocks: each ``next`` is data time, each
        block a batch of ``len(positions)`` samples."""
        timed_next = self._timed(next, count=False)
        probe = self

        def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            it = blocks(*args, **kwargs)
            while True:
                try:
                    pos, xb = timed_next(it)
                except StopIteration:
                    return
                probe.batches += 1
                probe.samples += len(pos)
                yield pos, xb

        return wrapper

    @contextlib.contextmanager
    def watch(self) -> Iterator[Probe]:
        import torch
        from torch.nn.modules.module import register_module_forward_hook
        from torch.utils.data import dataloader

        from fairaudit.lazy_images import LazyImages

        cuda = self.device_type == "cuda" and torch.cuda.is_available()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start_bytes = torch.cuda.memory_allocated()
        else:
            _reset_peak_rss()
            self.start_bytes = _rss()
        from fairaudit.builtin.models import _checkpoint_net

        originals = [(dataloader._BaseDataLoaderIter, "__next__"), (LazyImages, "read"), (_checkpoint_net, "batches")]
        saved = [getattr(cls, attr) for cls, attr in originals]
        dataloader._BaseDataLoaderIter.__next__ = self._timed(saved[0], count=True)  # type: ignore[method-assign]
        LazyImages.read = self._timed(saved[1], count=False)  # type: ignore[method-assign]
        _checkpoint_net.batches = self._timed_blocks(saved[2])  # torch_checkpoint reads blocks without a DataLoader
        handle = register_module_forward_hook(self._forward_hook)
        start = time.perf_counter()
        try:
            yield self
        finally:
            if cuda:
                torch.cuda.synchronize()
            self.seconds = time.perf_counter() - start
            handle.remove()
            for (cls, attr), original in zip(originals, saved, strict=True):
                setattr(cls, attr, original)
            self.peak_bytes = torch.cuda.max_memory_allocated() if cuda else _peak_rss()


def _batch_len(batch: Any) -> int:
    first = batch[0] if isinstance(batch, list | tuple) and batch else batch
    try:
        return len(first)
    except TypeError:
        return 1


def _reset_peak_rss() -> None:
    """Reset the kernel's high-water mark of this process's RSS (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _status_bytes(key: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return None


def _rss() -> int:
    """Current RSS (0 where ``/proc`` is missing)."""
    return _status_bytes("VmRSS:") or 0


def _peak_rss() -> int:
    """Peak RSS since :func:`_reset_peak_rss` (``VmHWM``), else since the process started."""
    peak = _status_bytes("VmHWM:")
    if peak is not None:
        return peak
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def loss_falls(losses: list[float]) -> tuple[float, float, bool]:
    """Mean of the first and of the last quarter of ``losses`` (at least one value each) and
    whether the last is lower."""
    if len(losses) < 2:
        return float("nan"), float("nan"), False
    k = max(1, len(losses) // 4)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return first, last, last < first


# ------------------------------------------------------------------ the trainers
@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one check (``full`` on a GPU, ``dry`` on CPU)."""

    embed_rows: int
    embed_dim: int
    epochs: int
    image_rows: int
    image_px: int
    cnn_channels: tuple[int, ...]
    advvae_epochs: int
    alpha_px: int
    alpha_width: float
    gan_steps: int
    gan_batch: int
    gan_px: int
    sd_steps: int
    sd_px: int
    sd_infer_steps: int
    sd_ema: float
    ckpt_px: int
    ckpt_epochs: int
    ckpt_batch: int
    audit_rows: int

    @classmethod
    def full(cls) -> Sizes:
        return cls(embed_rows=8000, embed_dim=1408, epochs=8, image_rows=2048, image_px=64, cnn_channels=(16, 32, 64),
                   advvae_epochs=10, alpha_px=64, alpha_width=0.5, gan_steps=200, gan_batch=32, gan_px=64,
                   sd_steps=200, sd_px=64, sd_infer_steps=20, sd_ema=0.99, ckpt_px=224, ckpt_epochs=5,
                   ckpt_batch=32, audit_rows=4000)

    @classmethod
    def dry(cls) -> Sizes:
        return cls(embed_rows=400, embed_dim=32, epochs=6, image_rows=96, image_px=32, cnn_channels=(4, 8),
                   advvae_epochs=6, alpha_px=16, alpha_width=0.125, gan_steps=8, gan_batch=16, gan_px=32, sd_steps=10,
                   sd_px=32, sd_infer_steps=4, sd_ema=0.9, ckpt_px=32, ckpt_epochs=3, ckpt_batch=16, audit_rows=400)


@dataclass
class Trained:
    """What a job hands back: the loss history it is judged on and a note on it."""

    losses: list[float]
    loss_name: str
    note: str = ""
    #: Failed checks of the job's own (beyond device, dtype and loss).
    problems: list[str] = field(default_factory=list)
    #: False for an evaluation-only job: no loss to fall.
    judge_loss: bool = True
    #: Samples/s of the timed part only (e.g. ``predict_proba`` without building the network).
    samples_per_s: float | None = None


def _context(model: Any, device: str, amp: bool, work_dir: Path | None = None) -> Any:
    from fairaudit.base import RunContext

    return model.bind(RunContext(device=device, seed=0, progress=False, mixed_precision=amp, work_dir=work_dir))


class Data:
    """The synthetic datasets, built once per size."""

    def __init__(self, sizes: Sizes, work: Path):
        from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR
        from fairaudit.builtin.datasets.synthetic_embeddings import SyntheticEmbeddings

        self.sizes, self.work = sizes, work
        self.embeddings = SyntheticEmbeddings(n_samples=sizes.embed_rows, dim=sizes.embed_dim, seed=0).load()
        self.cxr = SyntheticCXR(n_samples=sizes.image_rows, image_size=sizes.image_px, seed=0).load()
        self._folder: Path | None = None

    def streamed_folder(self) -> Any:
        """An ``image_folder`` (PNG files) read with ``stream: true``."""
        from fairaudit.builtin.datasets.image_folder import ImageFolderDataset, write_example

        if self._folder is None:
            self._folder = write_example(self.work / "folder", n=self.sizes.image_rows)
        return ImageFolderDataset(metadata=str(self._folder), target="label", sensitive=["sex"],
                                  patient_id="patient", image_size=self.sizes.image_px, stream=True).load()


def train_mlp(data: Data, device: str, amp: bool) -> Trained:
    from fairaudit.builtin.models.mlp import MLPModel

    s = data.sizes
    model = _context(MLPModel(hidden_dims=[256, 64], max_epochs=s.epochs, patience=s.epochs, batch_size=128,
                              device=device), device, amp)
    model.fit(data.embeddings.X, data.embeddings.y)
    return Trained([h["train_loss"] for h in model.history_], "train BCE per epoch")


def _train_cnn(images: Any, y: Any, data: Data, device: str, amp: bool, workers: int = 0) -> Trained:
    from fairaudit.builtin.models.cnn import SmallCNN

    s = data.sizes
    model = _context(SmallCNN(channels=list(s.cnn_channels), max_epochs=s.epochs, patience=s.epochs, batch_size=64,
                              device=device, num_workers=workers), device, amp)
    model.fit(images, y)
    return Trained([h["train_loss"] for h in model.history_], "train BCE per epoch")


def train_cnn(data: Data, device: str, amp: bool) -> Trained:
    return _train_cnn(data.cxr.images, data.cxr.y, data, device, amp)


def train_cnn_streamed(data: Data, device: str, amp: bool) -> Trained:
    folder = data.streamed_folder()
    trained = _train_cnn(folder.images, folder.y, data, device, amp, workers=2)
    trained.note = "PNG folder, stream: true, 2 DataLoader workers"
    return trained


def train_advvae(data: Data, device: str, amp: bool) -> Trained:
    from fairaudit_advvae import AdversarialVAEDebiaser

    s = data.sizes
    deb = _context(AdversarialVAEDebiaser(latent_dim=32, hidden_dims=(128,), batch_size=128, max_epochs=s.advvae_epochs,
                                          min_epochs=s.advvae_epochs, patience=s.advvae_epochs, audit_epochs=1,
                                          device=device, random_state=0, progress=False), device, amp)
    ds = data.embeddings
    deb.fit(ds.X, ds.y, sensitive_features=ds.sensitive)
    return Trained([h["train_recon"] for h in deb.history_], "reconstruction per epoch")


def train_alphashift(data: Data, device: str, amp: bool) -> Trained:
    from fairaudit_alphashift import AlphaShiftDebiaser

    s = data.sizes
    deb = _context(AlphaShiftDebiaser(image_size=s.alpha_px, latent_dim=16, width=s.alpha_width, max_epochs=s.epochs,
                                      patience=s.epochs, batch_size=32, n_augment=1, device=device, progress=False),
                   device, amp)
    ds = data.cxr
    deb.fit(ds.images, ds.y, sensitive_features=ds.sensitive[["sex"]])
    return Trained([h["train_loss"] for h in deb.train_report_.history], "SSIM+MSE+KL per epoch")


def train_cafgan(data: Data, device: str, amp: bool) -> Trained:
    from fairaudit_cafgan import CAFGAN

    s = data.sizes
    gen = _context(CAFGAN(image_size=s.gan_px, z_dim=16, base_channels=8, n_steps=s.gan_steps,
                          batch_size=s.gan_batch, n_critic=2, classifier_epochs=2, segmenter_epochs=2,
                          critic_channels=8, segmenter_channels=4, fair_per_group=4, device=device, progress=False),
                   device, amp)
    gen.fit(data.cxr)
    return Trained([h["critic_loss"] for h in gen.history_], "WGAN-GP critic loss per epoch")


SD_PROMPTS = ["chest x-ray, female patient", "chest x-ray, with support devices"]


def train_diffusion(data: Data, device: str, amp: bool) -> Trained:
    """Fine-tune the tiny pipeline's UNet with every training option of the plugin on (gradient
    checkpointing, EMA, warm-up + cosine LR, checkpoints and validation grids in a run folder),
    then edit a few images with the img2img editor; each option's trace is checked."""
    from fairaudit_diffusion import DiffusionCounterfactuals

    s = data.sizes
    run = data.work / f"sd-run-{'bf16' if amp else 'fp32'}"  # its own folder: the same one would resume
    every, warmup = max(1, s.sd_steps // 2), max(2, s.sd_steps // 10)  # 2+: a warm-up that rises
    gen = _context(DiffusionCounterfactuals(
        model_dir=f"tiny://{s.sd_px}", finetune="unet", lr=1e-3, max_steps=s.sd_steps, batch_size=8,
        resolution=s.sd_px, gradient_checkpointing=True, ema_decay=s.sd_ema, lr_schedule="cosine",
        lr_warmup_steps=warmup, checkpoint_every=every, validation_every=every, validation_prompts=SD_PROMPTS,
        editor="img2img", strength=0.5, num_inference_steps=s.sd_infer_steps, device=device, progress=False,
        mixed_precision=amp), device, amp, work_dir=run)
    gen.fit(data.cxr)
    log, problems = gen.train_log_, []
    lrs = log.lrs
    if not (len(lrs) == s.sd_steps and lrs[0] < max(lrs) and lrs[-1] < max(lrs)):
        problems.append(f"lr schedule: no warm-up then decay in {[round(v, 6) for v in lrs[:3]]}...{lrs[-1]:.3g}")
    want = sorted({*range(every, s.sd_steps + 1, every), s.sd_steps})
    if log.checkpoints != want or not (run / "checkpoints" / "sd_counterfactual_train_state.safetensors").is_file():
        problems.append(f"checkpoints at steps {log.checkpoints}, wanted {want} and a train state in {run}")
    rows = [0, *range(every, s.sd_steps + 1, every)]  # before training, then every `every` steps
    if sorted(log.validation) != rows or not (run / "figures" / "sd_counterfactual_validation.png").is_file():
        problems.append(f"validation samples at steps {sorted(log.validation)}, wanted {rows} "
                        "and figures/sd_counterfactual_validation.png")
    images = data.cxr.images[:4]
    edit = {"source_prompt": "chest x-ray, male patient", "target_prompt": SD_PROMPTS[0]}
    start = time.perf_counter()
    edited = gen.counterfactual(images, edit)
    edit_s = time.perf_counter() - start
    if type(gen.img2img_pipe_).__name__ != "StableDiffusionImg2ImgPipeline":
        problems.append(f"editor img2img ran {type(gen.img2img_pipe_).__name__}")
    if edited.shape != images.shape or not np.isfinite(edited).all() or np.abs(edited - images).mean() < 1e-4:
        problems.append(f"img2img edit: shape {edited.shape} (input {images.shape}) or no change")
    note = (f"per-step loss {log.losses[0]:.3f} -> {log.losses[-1]:.3f}; gradient checkpointing, EMA {s.sd_ema}, "
            f"cosine LR (warm-up {warmup}), checkpoints at {log.checkpoints}, validation grid rows "
            f"{sorted(log.validation)}; img2img edit {len(images) / edit_s:.1f} img/s")
    return Trained([gen.eval_loss_before_, gen.eval_loss_after_], "held-out denoising loss before/after (EMA)",
                   note=note, problems=problems)


def _checkpoint_model(data: Data, device: str, amp: bool, **params: Any) -> Any:
    from fairaudit.builtin.models.torch_checkpoint import TorchCheckpoint

    s = data.sizes
    return _context(TorchCheckpoint(arch="densenet121", channels=3, input_size=s.ckpt_px, batch_size=s.ckpt_batch,
                                    device=device, random_state=0, **params), device, amp)


def train_densenet(data: Data, device: str, amp: bool) -> Trained:
    """``torch_checkpoint`` densenet121, ``train: full`` from scratch (grey images repeated to 3
    channels and resized to ``input_size``)."""
    s = data.sizes
    model = _checkpoint_model(data, device, amp, train="full", lr=1e-3, max_epochs=s.ckpt_epochs,
                              patience=s.ckpt_epochs)
    model.fit(data.cxr.images, data.cxr.y)
    n_train = len(data.cxr.y) - round(model.val_fraction * len(data.cxr.y))
    steps = s.ckpt_epochs * -(-n_train // s.ckpt_batch)
    return Trained([h["train_loss"] for h in model.history_], "train BCE per epoch",
                   note=f"train: full, {s.ckpt_px} px, {steps} steps")


def predict_densenet(data: Data, device: str, amp: bool) -> Trained:
    """Evaluation throughput: a densenet121 checkpoint saved as safetensors, loaded with
    ``train: none`` and scored with ``predict_proba`` (timed alone, after one warm-up block)."""
    from safetensors.torch import save_file

    from fairaudit.builtin.models._architectures import build_architecture

    s = data.sizes
    weights = data.work / "densenet121.safetensors"
    if not weights.is_file():
        import torch

        torch.manual_seed(0)
        save_file({k: v.contiguous() for k, v in build_architecture("densenet121", 1).state_dict().items()},
                  str(weights))
    model = _checkpoint_model(data, device, amp, weights=str(weights), train="none")
    images = data.cxr.images
    model.fit(images[:2], data.cxr.y[:2])
    model.predict_proba(images[: s.ckpt_batch])  # warm-up: kernels, allocator
    start = time.perf_counter()
    scores = model.predict_proba(images)
    rate = len(images) / (time.perf_counter() - start)
    problems = [] if scores.shape == (len(images),) and np.isfinite(scores).all() else [
        f"predict_proba gave shape {scores.shape} with non-finite values"]
    return Trained([], "evaluation only", note=f"predict_proba {rate:,.0f} img/s at {s.ckpt_px} px "
                   "(samples/s column: the timed predict only)", problems=problems, judge_loss=False,
                   samples_per_s=rate)


#: name -> (trainer, whether it honours mixed_precision, runs with bf16 too)
JOBS: dict[str, tuple[Callable[[Data, str, bool], Trained], bool, bool]] = {
    "mlp": (train_mlp, True, True),
    "cnn": (train_cnn, True, True),
    "cnn-stream": (train_cnn_streamed, True, False),
    "advvae": (train_advvae, False, True),
    "alphashift": (train_alphashift, True, True),
    "cafgan": (train_cafgan, False, True),
    "diffusion": (train_diffusion, True, True),
    "densenet121": (train_densenet, False, True),
    "densenet121-predict": (predict_densenet, False, True),
}


# ------------------------------------------------------------------ rows of the table
@dataclass
class Row:
    """One line of the table (a trainer at one precision, the audit, or the DDP run)."""

    job: str
    precision: str
    device: str
    status: str = "ok"
    seconds: float = 0.0
    batches: int = 0
    samples_per_s: float = 0.0
    peak_mib: float = 0.0
    #: Peak minus what was in use when ``fit`` started (the fit's own memory).
    peak_growth_mib: float = 0.0
    peak_kind: str = ""
    data_share: float = 0.0
    loss: str = ""
    loss_first: float | None = None
    loss_last: float | None = None
    loss_falls: bool | None = None
    on_device: bool | None = None
    modules_checked: int = 0
    compute_dtype: str = ""
    problems: list[str] = field(default_factory=list)
    note: str = ""


def run_job(name: str, data: Data, device: str, amp: bool) -> Row:
    trainer, honours_amp, _ = JOBS[name]
    row = Row(job=name, precision="bf16 autocast" if amp else "fp32", device=device)
    probe = Probe(device)
    try:
        with warnings.catch_warnings(record=True) as caught, probe.watch():
            warnings.simplefilter("always")
            trained = trainer(data, device, amp)
    except Exception as exc:  # a failed trainer is a row of the table, not the end of the check
        row.status, row.problems = "ERROR", [f"{type(exc).__name__}: {exc}"]
        row.note = traceback.format_exc(limit=3).strip().splitlines()[-1]
        return row
    fallback = [str(w.message) for w in caught if "CUDA is not available" in str(w.message)]
    _fill_measurements(row, probe)
    if trained.samples_per_s is not None:
        row.samples_per_s = trained.samples_per_s
    row.loss, row.note = trained.loss_name, trained.note
    if trained.judge_loss:
        first, last, falls = loss_falls(trained.losses)
        row.loss_first, row.loss_last, row.loss_falls = first, last, falls
        if not falls:
            row.problems.append(f"loss did not fall ({first:.4g} -> {last:.4g})")
    row.problems += trained.problems + fallback
    if amp and device.startswith("cuda") and honours_amp and "bfloat16" not in probe.dtypes:
        row.problems.append("mixed_precision requested but no layer computed in bfloat16")
    if amp and not honours_amp:
        row.note = (row.note + "; " if row.note else "") + "does not support mixed precision: ran in fp32"
    row.status = "ok" if not row.problems else "FAIL"
    return row


def _fill_measurements(row: Row, probe: Probe) -> None:
    row.seconds = probe.seconds
    row.batches = probe.batches
    row.samples_per_s = probe.samples / probe.seconds if probe.seconds > 0 else 0.0
    row.peak_mib = probe.peak_bytes / 2**20
    row.peak_growth_mib = max(0, probe.peak_bytes - probe.start_bytes) / 2**20
    row.peak_kind = "GPU" if probe.device_type == "cuda" else "RSS"
    row.data_share = probe.data_seconds / probe.seconds if probe.seconds > 0 else 0.0
    row.on_device = not probe.wrong and probe.modules_checked > 0
    row.modules_checked = probe.modules_checked
    row.compute_dtype = ",".join(f"{k}:{v}" for k, v in probe.dtypes.most_common(2))
    if probe.wrong:
        row.problems.append("off device: " + ", ".join(f"{k} (x{v})" for k, v in probe.wrong.most_common(4)))
    if probe.modules_checked == 0:
        row.problems.append("no module ran")


# ------------------------------------------------------------------ audit and DDP
def audit_spec(sizes: Sizes, device: str, name: str = "gpu_check") -> str:
    """A small audit: synthetic embeddings, an MLP, the advvae debiaser, group metrics."""
    cuda = device.startswith("cuda")
    return textwrap.dedent(f"""\
        name: {name}
        seed: 0
        device: {device}
        on_missing_cuda: {"fail" if cuda else "warn"}
        dataset:
          name: synthetic_embeddings
          params: {{n_samples: {sizes.audit_rows}, dim: {min(sizes.embed_dim, 256)}, seed: 0}}
        attributes: [sex]
        model:
          name: mlp
          params: {{hidden_dims: [64], max_epochs: {sizes.epochs}, device: {device}}}
        debiasers:
          - name: advvae
            params: {{latent_dim: 16, hidden_dims: [64], max_epochs: 3, min_epochs: 1, audit_epochs: 1,
                     progress: false}}
        metrics: [group_metrics]
        statistics: {{n_boot: 100, n_permutations: 100, min_group_size: 10}}
        report: {{formats: []}}
        """)


def run_audit_check(sizes: Sizes, device: str, work: Path) -> Row:
    """One audit end to end through :func:`fairaudit.audit.runner.run_audit`."""
    from fairaudit.audit.runner import run_audit

    row = Row(job="audit (run_audit)", precision="fp32", device=device)
    spec = work / "audit.yaml"
    spec.write_text(audit_spec(sizes, device))
    probe = Probe(device)
    try:
        with probe.watch():
            outcome = run_audit(spec, output_dir=work / "audit-runs")
    except Exception as exc:
        row.status, row.problems = "ERROR", [f"{type(exc).__name__}: {exc}"]
        return row
    _fill_measurements(row, probe)
    row.problems += _check_run_folder(Path(outcome.run_dir), device, world_size=1)
    row.loss = "arms ok"
    row.status = "ok" if not row.problems else "FAIL"
    return row


def _only_run(root: Path) -> Path:
    found = sorted(p.parent for p in root.rglob("result.json"))
    return found[-1] if found else root


def _check_run_folder(run_dir: Path, device: str, world_size: int) -> list[str]:
    problems: list[str] = []
    result_file, manifest_file = run_dir / "result.json", run_dir / "manifest.json"
    if not result_file.is_file():
        return [f"no result.json in {run_dir}"]
    result = json.loads(result_file.read_text())
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    if str(manifest.get("device", "")).split(":")[0] != device.split(":")[0]:
        problems.append(f"manifest device {manifest.get('device')!r}, wanted {device!r}")
    failed = [a.get("name") for a in result.get("arms", []) if a.get("status") == "failed"]
    if failed:
        problems.append(f"failed arms: {failed}")
    got_world = result.get("provenance", {}).get("world_size")
    if got_world != world_size:
        problems.append(f"world_size {got_world}, wanted {world_size}")
    return problems


def run_ddp_check(sizes: Sizes, device: str, work: Path, timeout: int) -> Row:
    """``torchrun --nproc_per_node 2 -m fairaudit run SPEC``: NCCL on CUDA (gloo when NCCL
    refuses two ranks on one GPU), gloo on CPU."""
    import torch

    cuda = device.startswith("cuda")
    spec = work / "ddp.yaml"
    spec.write_text(audit_spec(sizes, device, name="gpu_check_ddp"))
    backends = ["nccl", "gloo"] if cuda else ["gloo"]
    row = Row(job="ddp (torchrun x2)", precision="fp32", device=device)
    notes = []
    if cuda and torch.cuda.device_count() < 2:
        notes.append("one GPU: both ranks share it")
    for backend in backends:
        out = work / f"ddp-{backend}"
        env = {**os.environ, "FAIRAUDIT_DIST_BACKEND": backend, "FAIRAUDIT_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(29500 + os.getpid() % 1000), "-m", "fairaudit", "run", str(spec),
               "-o", str(out), "-q"]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=work)
        except subprocess.TimeoutExpired:
            notes.append(f"{backend}: timed out after {timeout} s")
            continue
        row.seconds = time.perf_counter() - start
        if proc.returncode == 0:
            row.problems = _check_run_folder(_only_run(out), device, world_size=2)
            row.loss = f"backend {backend}"
            row.status = "ok" if not row.problems else "FAIL"
            row.note = "; ".join(notes)
            return row
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        why = next((ln for ln in reversed(tail) if "Error" in ln or "error" in ln), tail[-1] if tail else "")
        notes.append(f"{backend} failed (rc {proc.returncode}): {why.strip()[:200]}")
    row.status, row.problems, row.note = "FAIL", notes, "; ".join(notes)
    return row


# ------------------------------------------------------------------ output
def table(rows: list[Row]) -> str:
    head = ("job", "precision", "device", "status", "s", "batches", "samples/s", "peak MiB (+fit)", "data %",
            "loss first -> last", "falls", "on device", "layer dtypes")
    lines = [head]
    yes_no = {True: "yes", False: "NO", None: "-"}
    for r in rows:
        loss = f"{r.loss_first:.4g} -> {r.loss_last:.4g}" if r.loss_first is not None else r.loss
        measured = r.batches > 0
        lines.append((
            r.job, r.precision, r.device, r.status, f"{r.seconds:.1f}", str(r.batches) if measured else "-",
            f"{r.samples_per_s:,.0f}" if measured else "-",
            f"{r.peak_mib:,.0f} {r.peak_kind} (+{r.peak_growth_mib:,.0f})" if r.peak_kind else "-",
            f"{100 * r.data_share:.0f}" if measured else "-", loss, yes_no[r.loss_falls], yes_no[r.on_device],
            r.compute_dtype or "-",
        ))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = [" | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    for r in rows:
        for p in r.problems:
            out.append(f"  {r.job} [{r.precision}]: {p}")
        if r.note and r.status == "ok":
            out.append(f"  {r.job} [{r.precision}]: {r.note}")
    return "\n".join(out)


def environment(device: str) -> dict[str, Any]:
    import platform

    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(), "device": device,
                            "cuda": torch.cuda.is_available(), "cpus": os.cpu_count()}
    if torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name(0), gpu_count=torch.cuda.device_count(),
                    cuda_version=torch.version.cuda, bf16=torch.cuda.is_bf16_supported())
    return info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="tiny sizes, a few steps (implied without CUDA)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cuda, cuda:N or cpu")
    p.add_argument("--json", type=Path, default=None, help="write the table here (default: reports/gpu_check/)")
    p.add_argument("--only", nargs="*", default=None, help=f"subset of the trainers: {', '.join(JOBS)}")
    p.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast runs")
    p.add_argument("--skip-audit", action="store_true", help="skip the end-to-end audit")
    p.add_argument("--skip-ddp", action="store_true", help="skip the 2-rank torchrun run")
    p.add_argument("--ddp-timeout", type=int, default=180, help="seconds per torchrun attempt")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    os.environ.setdefault("FAIRAUDIT_NO_PROGRESS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from fairaudit.threads import configure_torch_threads

    try:
        threads = configure_torch_threads()
    except ValueError as exc:  # a bad FAIRAUDIT_NUM_THREADS
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    cuda = torch.cuda.is_available()
    device = ("cuda" if cuda else "cpu") if args.device == "auto" else args.device
    if device.startswith("cuda") and not cuda:
        print(f"--device {device} was requested but CUDA is not available", file=sys.stderr)
        return 2
    dry = args.dry_run or not device.startswith("cuda")
    sizes = Sizes.dry() if dry else Sizes.full()
    print(f"gpu_check: device {device}, {'dry run (tiny sizes)' if dry else 'full size'}; {threads.describe()}",
          flush=True)
    unknown = sorted(set(args.only or []) - set(JOBS))
    if unknown:
        print(f"unknown trainers {unknown}; known: {list(JOBS)}", file=sys.stderr)
        return 2
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        work = Path(tmp)
        data = Data(sizes, work)
        if device.startswith("cuda"):  # CUDA context, kernels and allocator warm before the first timed fit
            train_mlp(Data(Sizes.dry(), work), device, False)
        for name in args.only or list(JOBS):
            for amp in (False, True) if JOBS[name][2] and not args.no_bf16 else (False,):
                rows.append(run_job(name, data, device, amp))
                print(f"  {name} [{rows[-1].precision}]: {rows[-1].status} in {rows[-1].seconds:.1f} s", flush=True)
        if not args.skip_audit:
            rows.append(run_audit_check(sizes, device, work))
            print(f"  audit: {rows[-1].status} in {rows[-1].seconds:.1f} s", flush=True)
        if not args.skip_ddp:
            rows.append(run_ddp_check(sizes, device, work, args.ddp_timeout))
            print(f"  ddp: {rows[-1].status} in {rows[-1].seconds:.1f} s", flush=True)
    wall = time.perf_counter() - started
    print()
    print(table(rows))
    report = {"created": dt.datetime.now().isoformat(timespec="seconds"), "dry_run": dry, "wall_s": round(wall, 1),
              "environment": environment(device), "threads": threads.as_dict(), "rows": [asdict(r) for r in rows]}
    stamp = f"{'cuda' if cuda else 'cpu'}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    path = args.json or REPO / "reports" / "gpu_check" / f"{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
    failed = [r for r in rows if r.status != "ok"]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} checks passed in {wall:.0f} s; table written to {path}")
    if not cuda:
        print(NO_CUDA_LINE)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
