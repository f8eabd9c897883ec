"""Training throughput (samples/s) of the alpha-shift autoencoder on CPU, against a plain
strided-conv autoencoder of about the same size trained by the same loop in the same run.

    python plugins/fairaudit-alphashift/benchmarks/bench_throughput.py [--size 128] [--threads 1]

Prints one line per model and the ratios ShuffleVAE / plain.  Both models see the same
phantom images, batch size, optimiser, random erasing and SSIM+MSE loss; the plain model has
no attention map, so the ShuffleVAE is also timed without it.
"""

from __future__ import annotations

import argparse
import os


def forward_macs(model: object, size: int) -> int:
    """Multiply-accumulates of one forward pass of one image (convolutions and linear layers)."""
    import torch
    from torch import nn

    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * (module.in_channels // module.groups) * k
        elif isinstance(module, nn.ConvTranspose2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += inputs[0][0].numel() * (module.out_channels // module.groups) * k
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()  # type: ignore[attr-defined]
               if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)]
    model.eval()  # type: ignore[attr-defined]
    with torch.no_grad():
        model(torch.rand(1, 1, size, size))  # type: ignore[operator]
    for h in handles:
        h.remove()
    return total


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="image side (power of two)")
    parser.add_argument("--n", type=int, default=96, help="training images")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--repeats", type=int, default=2,
                        help="interleaved rounds; the best rate of each model is kept")
    args = parser.parse_args(argv)

    import torch
    from fairaudit_alphashift.model import PlainConvAE, ShuffleVAE, count_parameters
    from fairaudit_alphashift.phantoms import make_phantoms
    from fairaudit_alphashift.train import TrainConfig, train_autoencoder

    os.environ.setdefault("FAIRAUDIT_NO_PROGRESS", "1")
    torch.set_num_threads(args.threads)
    images = make_phantoms(args.n, args.size, seed=0).images
    cfg = TrainConfig(max_epochs=args.epochs, batch_size=args.batch_size, val_fraction=0.0,
                      progress=False)
    warm = TrainConfig(max_epochs=1, batch_size=args.batch_size, val_fraction=0.0, progress=False)
    builders = {
        "shufflevae": lambda: ShuffleVAE(args.size),
        "shufflevae_no_attention": lambda: ShuffleVAE(args.size, attention=False),
        "plain_conv_ae": lambda: PlainConvAE(args.size),
    }
    rates: dict[str, float] = {}
    print(f"CPU training throughput, {args.size} px, batch {args.batch_size}, {args.n} images, "
          f"{args.epochs} epochs, {args.threads} thread(s), best of {args.repeats} interleaved "
          f"rounds, torch {torch.__version__}")
    models, macs = {}, {}
    for name, build in builders.items():
        torch.manual_seed(0)
        models[name] = build()
        macs[name] = forward_macs(models[name], args.size)
        train_autoencoder(models[name], images[: args.batch_size * 2], warm, "cpu")  # warm-up
    for _ in range(args.repeats):
        for name, model in models.items():
            report = train_autoencoder(model, images, cfg, "cpu")
            rates[name] = max(rates.get(name, 0.0), report.samples_per_s)
    for name, model in models.items():
        print(f"  {name:<26} {count_parameters(model):>10,} params  "
              f"{macs[name] / 1e6:7.1f} MMAC/img  {rates[name]:8.1f} samples/s")
    plain = rates["plain_conv_ae"]
    for name in ("shufflevae", "shufflevae_no_attention"):
        print(f"ratio {name} / plain_conv_ae: {rates[name] / plain:.2f} (samples/s), "
              f"{macs[name] / macs['plain_conv_ae']:.2f} (MACs)")
    return rates


if __name__ == "__main__":
    main()
