"""Cost of the fine-tuning options for real weights: gradient checkpointing, EMA, resumable state.

Times the same fine-tune (tiny random pipeline built from configs, no download) with each
option on its own, and reports samples/s, the ratio to the plain run, peak CUDA memory (on a
GPU) and the size and write time of the resumable training state.

    python plugins/fairaudit-diffusion/benchmarks/bench_features.py --config medium --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_throughput import CONFIGS, _captions

VARIANTS = {
    "plain": {},
    "gradient checkpointing": {"gradient_checkpointing": True},
    "EMA 0.999": {"ema_decay": 0.999},
    "state every 5 steps": {"checkpoint_every": 5},
}


def run(path: Path, mode: str, variant: dict, steps: int, warmup: int, batch: int, device: str, tmp: Path) -> dict:
    import torch
    from fairaudit_diffusion.finetune import TrainConfig, finetune
    from fairaudit_diffusion.pipeline import load_components

    c = load_components(path, device)
    side = c.native_resolution // c.vae_scale_factor
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(64, 4, side, side, generator=gen)
    std = torch.full_like(mean, 0.05)
    captions = _captions(64, 0)
    state = tmp / f"state-{mode}.safetensors"
    state.unlink(missing_ok=True)
    cfg = TrainConfig(
        mode=mode, lr=1e-4, max_steps=warmup + steps, batch_size=batch, device=device, progress=False,
        state_path=state if variant.get("checkpoint_every") else None, **variant,
    )
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    log = finetune(c, mean, std, lambda rows, rng: [captions[i] for i in rows], cfg)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else float("nan")
    timed = sorted(log.step_seconds[warmup:])
    saves = len(log.checkpoints)
    return {
        # the median step: robust to other jobs taking the CPU for a moment
        "samples_per_s": batch / timed[len(timed) // 2],
        "save_ms": 1e3 * (log.seconds - sum(log.step_seconds)) / saves if saves else float("nan"),
        "peak_mib": peak,
        "state_mib": state.stat().st_size / 2**20 if state.is_file() else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=list(CONFIGS), default="medium")
    parser.add_argument("--modes", default="lora,unet")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=2, help="variants run in turn; best round kept")
    args = parser.parse_args()

    import diffusers
    import torch
    import transformers
    from fairaudit_diffusion.tiny import build_tiny_pipeline

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    size, widths = CONFIGS[args.config]
    print(f"config={args.config} ({size} px) device={args.device} threads={torch.get_num_threads()} "
          f"batch={args.batch_size} timed steps={args.steps} (+{args.warmup})")
    print(f"{'mode':<5} {'variant':<24} {'samples/s':>10} {'vs plain':>9} {'peak MiB':>9} {'state MiB':>10} "
          f"{'ms/save':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_pipeline(Path(tmp) / "pipe", image_size=size, unet_channels=widths)
        for mode in args.modes.split(","):
            best: dict[str, dict] = {}
            start = time.perf_counter()
            names = list(VARIANTS)
            for r in range(args.rounds):
                for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order
                    variant = VARIANTS[name]
                    row = run(path, mode, variant, args.steps, args.warmup, args.batch_size, args.device, Path(tmp))
                    if name not in best or row["samples_per_s"] > best[name]["samples_per_s"]:
                        best[name] = row
            base = best["plain"]["samples_per_s"]
            for name, row in best.items():
                print(f"{mode:<5} {name:<24} {row['samples_per_s']:>10.1f} {row['samples_per_s'] / base:>8.2f}x "
                      f"{row['peak_mib']:>9.1f} {row['state_mib']:>10.2f} {row['save_ms']:>8.1f}")
            print(f"({mode}: {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
