"""Fine-tuning throughput of the Stable Diffusion generator: LoRA vs full UNet, same run.

Builds tiny random pipelines from configs (no download), then times UNet fine-tuning steps
(epsilon-prediction MSE, AdamW, batch of VAE latents and captions) for each mode, and the
edit (DDIM inversion + guided denoising) throughput. Prints a table and the LoRA / UNet ratio.

    python plugins/fairaudit-diffusion/benchmarks/bench_throughput.py --steps 20 --config both
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("FAIRAUDIT_NO_PROGRESS", "1")

#: name -> (image size, UNet widths)
CONFIGS = {"tiny": (32, (32, 64)), "medium": (64, (64, 128))}


def _captions(n: int, seed: int) -> list[str]:
    import numpy as np
    import pandas as pd
    from fairaudit_diffusion.captions import CaptionBuilder

    rng = np.random.default_rng(seed)
    meta = pd.DataFrame(
        {
            "label": rng.integers(0, 2, n),
            "device": rng.integers(0, 2, n),
            "view": rng.integers(0, 2, n),
            "sex": rng.choice(["F", "M"], n),
        }
    )
    return CaptionBuilder(fields=("label", "device", "view", "sex")).captions(meta)


def bench(path: Path, mode: str, steps: int, warmup: int, batch_size: int, device: str) -> dict:
    import numpy as np
    import torch
    from fairaudit_diffusion.finetune import TrainConfig, finetune
    from fairaudit_diffusion.pipeline import load_components

    c = load_components(path, device)
    side = c.native_resolution // c.vae_scale_factor
    n = 64
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(n, 4, side, side, generator=gen)
    std = torch.full_like(mean, 0.05)
    captions = _captions(n, 0)
    cfg = TrainConfig(
        mode=mode,
        lr=1e-4,
        max_steps=warmup + steps,
        batch_size=batch_size,
        device=device,
        progress=False,
    )
    log = finetune(c, mean, std, lambda rows, rng: [captions[i] for i in rows], cfg)
    return {
        "mode": mode,
        "trainable_params": log.trainable_params,
        "samples_per_s": log.throughput(batch_size, skip=warmup),
        "final_loss": float(np.mean(log.losses[-5:])),
    }


def bench_edit(path: Path, batch_size: int, steps: int, device: str) -> float:
    import torch
    from fairaudit_diffusion.editing import ddim_plan, edit_latents
    from fairaudit_diffusion.pipeline import load_components

    c = load_components(path, device)
    side = c.native_resolution // c.vae_scale_factor
    z = torch.randn(batch_size, 4, side, side, generator=torch.Generator().manual_seed(1)).to(
        device
    )
    src = c.encode_text(["chest x-ray, with support devices"] * batch_size)
    tgt = c.encode_text(["chest x-ray, without support devices"] * batch_size)
    unc = c.encode_text([""] * batch_size)
    plan = ddim_plan(c.scheduler, steps, 1.0)
    edit_latents(c.unet, ddim_plan(c.scheduler, 2, 1.0), z, src, tgt, unc, 7.5)  # warm-up
    start = time.perf_counter()
    edit_latents(c.unet, plan, z, src, tgt, unc, 7.5)
    return batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=[*CONFIGS, "both"], default="tiny")
    parser.add_argument("--steps", type=int, default=20, help="timed fine-tuning steps per mode")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--edit-steps", type=int, default=10, help="DDIM steps of the timed edit")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()

    import diffusers
    import torch
    import transformers
    from fairaudit_diffusion.tiny import build_tiny_pipeline

    diffusers.utils.logging.disable_progress_bar()  # a clean table: no loading bars between rows
    transformers.utils.logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = list(CONFIGS) if args.config == "both" else [args.config]
    results = []
    print(
        f"device={args.device} threads={torch.get_num_threads()} batch={args.batch_size} "
        f"timed steps={args.steps} (+{args.warmup} warm-up)"
    )
    print(f"{'config':<8} {'px':>4} {'mode':<5} {'trainable':>11} {'samples/s':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            size, widths = CONFIGS[name]
            path = build_tiny_pipeline(Path(tmp) / name, image_size=size, unet_channels=widths)
            rows = {}
            for mode in ("lora", "unet"):
                row = bench(path, mode, args.steps, args.warmup, args.batch_size, args.device)
                rows[mode] = row
                print(
                    f"{name:<8} {size:>4} {mode:<5} {row['trainable_params']:>11,} "
                    f"{row['samples_per_s']:>10.1f}"
                )
            ratio = rows["lora"]["samples_per_s"] / rows["unet"]["samples_per_s"]
            edit = bench_edit(path, args.batch_size, args.edit_steps, args.device)
            print(
                f"{name:<8} LoRA / full-UNet throughput ratio: {ratio:.2f}x; "
                f"edit ({args.edit_steps} DDIM steps each way, guidance 7.5): {edit:.1f} images/s"
            )
            results.append(
                {
                    "config": name,
                    "image_size": size,
                    "unet_channels": list(widths),
                    "lora": rows["lora"],
                    "unet": rows["unet"],
                    "lora_over_unet": ratio,
                    "edit_images_per_s": edit,
                }
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
