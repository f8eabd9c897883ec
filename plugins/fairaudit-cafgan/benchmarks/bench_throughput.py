"""Generator + critic training throughput of CAF-GAN on CPU, against plain WGAN-GP.

Runs the real training loop (:func:`fairaudit_cafgan.trainer.train_gan`) for a fixed
number of generator steps, once with ``lambda_fair = lambda_clinic = 0`` (plain
conditional WGAN-GP) and once with both terms on, in the same process and with the same
networks, and prints real samples per second (critic side), generator steps per second
and the CAF-GAN / WGAN-GP ratio.  The frozen critics are untrained (their cost does not
depend on their weights); timings exclude their training.

    python plugins/fairaudit-cafgan/benchmarks/bench_throughput.py --image-size 64 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def _data(n: int, size: int, seed: int):
    """Random images with two elliptical 'lungs' (shape only matters for the loss values)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    lin = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    lungs = ((((xx + 0.4) / 0.27) ** 2 + ((yy + 0.05) / 0.5) ** 2) <= 1) | (
        (((xx - 0.4) / 0.27) ** 2 + ((yy + 0.05) / 0.5) ** 2) <= 1
    )
    images = (0.6 - 0.4 * lungs.float() + 0.05 * torch.randn(n, 1, size, size, generator=g)).clamp(0, 1)
    y = torch.randint(0, 2, (n,), generator=g)
    group = torch.randint(0, 2, (n,), generator=g)
    return images, y, group, lungs.float().expand(n, size, size)


def run_arm(args: argparse.Namespace, lambda_fair: float, lambda_clinic: float) -> dict[str, float]:
    import torch
    from fairaudit_cafgan.losses import reference_stats
    from fairaudit_cafgan.networks import (
        ConditionalGenerator,
        DiagnosticCNN,
        LungUNet,
        ProjectionCritic,
        freeze,
    )
    from fairaudit_cafgan.trainer import FrozenCritics, GANSettings, train_gan

    torch.manual_seed(0)
    size = args.image_size
    n = args.batch_size * args.n_critic * args.steps
    images, y, group, masks = _data(n, size, 0)
    clf = freeze(DiagnosticCNN(size, args.critic_channels))
    seg = freeze(LungUNet(args.segmenter_channels, depth=2 if size <= 32 else 3))
    critics = FrozenCritics(clf, seg, reference_stats(masks[:64]))
    settings = GANSettings(
        z_dim=args.z_dim,
        n_groups=2,
        n_critic=args.n_critic,
        batch_size=args.batch_size,
        lambda_fair=lambda_fair,
        lambda_clinic=lambda_clinic,
        fair_per_group=8,
        n_steps=args.steps,
        fair_groups=[0, 1],
        device="cpu",
    )
    G = ConditionalGenerator(args.z_dim, 4, size, args.base_channels)
    D = ProjectionCritic(4, size, args.base_channels)
    warm = GANSettings(**{**settings.__dict__, "n_steps": 1})
    k = args.batch_size * args.n_critic
    train_gan(G, D, images[:k], y[:k], group[:k], critics, warm)
    start = time.perf_counter()
    history = train_gan(G, D, images, y, group, critics, settings)
    seconds = time.perf_counter() - start
    # the per-epoch monitor (fixed-noise fairness/clinical terms) runs in both arms
    steps = history[-1]["generator_steps"]
    return {
        "seconds": seconds,
        "generator_steps": steps,
        "samples_per_s": steps * args.n_critic * args.batch_size / seconds,
        "generator_steps_per_s": steps / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=64, choices=[32, 64, 128])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-critic", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="generator steps per arm")
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--critic-channels", type=int, default=16)
    parser.add_argument("--segmenter-channels", type=int, default=8)
    parser.add_argument("--z-dim", type=int, default=64)
    parser.add_argument("--lambda-fair", type=float, default=1.0)
    parser.add_argument("--lambda-clinic", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats; the best is kept")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    os.environ.setdefault("FAIRAUDIT_NO_PROGRESS", "1")
    import torch

    torch.set_num_threads(args.threads)
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeats):
        for name, lam in (
            ("wgan_gp", (0.0, 0.0)),
            ("cafgan", (args.lambda_fair, args.lambda_clinic)),
        ):
            result = run_arm(args, *lam)
            if name not in best or result["samples_per_s"] > best[name]["samples_per_s"]:
                best[name] = result
    ratio = best["cafgan"]["samples_per_s"] / best["wgan_gp"]["samples_per_s"]
    if args.json:
        print(json.dumps({"args": vars(args), "arms": best, "ratio_cafgan_over_wgan": ratio}))
        return
    print(
        f"CAF-GAN training throughput, CPU ({platform.processor() or platform.machine()}, "
        f"{args.threads} thread(s), torch {torch.__version__})"
    )
    print(
        f"{args.image_size} px, batch {args.batch_size}, n_critic {args.n_critic}, "
        f"{args.steps} generator steps, base channels {args.base_channels}"
    )
    print(f"{'arm':<10}{'real samples/s':>16}{'G steps/s':>12}{'seconds':>10}")
    for name, r in best.items():
        print(f"{name:<10}{r['samples_per_s']:>16.1f}{r['generator_steps_per_s']:>12.3f}{r['seconds']:>10.2f}")
    print(f"ratio cafgan / wgan_gp (samples/s): {ratio:.3f}")


if __name__ == "__main__":
    main()
