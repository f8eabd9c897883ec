"""Training throughput of the adversarial VAE against a plain VAE of the same size, same run.

    python plugins/fairaudit-advvae/benchmarks/bench_throughput.py [--n 4096 --dim 1408 ...]

Both train on the same random embeddings with the same encoder/decoder widths, batch size,
optimiser and loader; the plain VAE optimises reconstruction + KL only.  The adversarial VAE
is timed through ``AdversarialVAEDebiaser.fit`` (task head, MLP adversary steps, closed-form
linear adversary, per-epoch validation and probe included; no final audit).  Throughput is
training rows x epochs / wall-clock seconds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def plain_vae_seconds(
    X: np.ndarray,
    latent_dim: int,
    hidden: tuple[int, ...],
    batch_size: int,
    epochs: int,
    lr: float,
    device: str,
) -> float:
    """Wall-clock seconds of ``epochs`` plain-VAE epochs (reconstruction + KL, Adam)."""
    import torch
    from fairaudit_advvae.losses import kl_loss, reconstruction_loss
    from fairaudit_advvae.networks import DebiasingVAE

    from fairaudit.training import make_loader

    torch.manual_seed(0)
    vae = DebiasingVAE(X.shape[1], latent_dim, hidden).to(device)
    optimiser = torch.optim.Adam(vae.parameters(), lr=lr, foreach=True)
    loader = make_loader(X, batch_size=batch_size, shuffle=True, seed=0, drop_last=True)
    start = time.perf_counter()
    for _ in range(epochs):
        for (xb,) in loader:
            xb = xb.to(device)
            mu, logvar, _, recon, _ = vae(xb)
            loss = reconstruction_loss(recon, xb) + kl_loss(mu, logvar, xb.shape[1])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def advvae_seconds(
    X: np.ndarray, y: np.ndarray, sf: pd.DataFrame, params: dict
) -> tuple[float, int]:
    """Wall-clock seconds of ``AdversarialVAEDebiaser.fit`` and the rows it trained on per epoch."""
    from fairaudit_advvae import AdversarialVAEDebiaser

    est = AdversarialVAEDebiaser(**params)
    start = time.perf_counter()
    est.fit(X, y, sensitive_features=sf)
    seconds = time.perf_counter() - start
    assert len(est.history_) == params["max_epochs"], "early stopping must not cut the benchmark"
    n_train = len(X) - round(params["val_fraction"] * len(X))
    return seconds, n_train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4096, help="rows (default 4096)")
    parser.add_argument("--dim", type=int, default=1408, help="embedding width (default 1408)")
    parser.add_argument("--latent-dim", type=int, default=128)
    parser.add_argument("--hidden", type=int, nargs="*", default=[], help="encoder widths")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    y = (rng.random(args.n) < 0.3).astype(int)
    sf = pd.DataFrame(
        {
            "sex": rng.choice(["F", "M"], args.n),
            "race": rng.choice(list("ABC"), args.n),
            "age": rng.uniform(30, 90, args.n),
        }
    )
    params = {
        "attributes": ("sex", "race", "age"),
        "latent_dim": args.latent_dim,
        "hidden_dims": tuple(args.hidden),
        "batch_size": args.batch_size,
        "max_epochs": args.epochs,
        "min_epochs": args.epochs,
        "val_fraction": 0.15,
        "audit_epochs": 0,
        "progress": False,
        "device": args.device,
        "random_state": 0,
    }
    n_train = len(X) - round(0.15 * len(X))
    # warm-up (lazy imports, allocator) for both, then the timed runs
    plain_vae_seconds(
        X[:512], args.latent_dim, tuple(args.hidden), args.batch_size, 1, 1e-3, args.device
    )
    advvae_seconds(X[:512], y[:512], sf.iloc[:512], {**params, "max_epochs": 1, "min_epochs": 1})
    t_adv, n_adv = advvae_seconds(X, y, sf, params)
    t_plain = plain_vae_seconds(
        X[:n_train],
        args.latent_dim,
        tuple(args.hidden),
        args.batch_size,
        args.epochs,
        1e-3,
        args.device,
    )
    adv_rate = n_adv * args.epochs / t_adv
    plain_rate = n_train * args.epochs / t_plain
    print(
        f"device={args.device} threads={torch.get_num_threads()} n_train={n_train} "
        f"dim={args.dim} latent={args.latent_dim} hidden={args.hidden} batch={args.batch_size} "
        f"epochs={args.epochs}"
    )
    print(f"adversarial VAE (sex+race+age, fit):  {adv_rate:10.1f} samples/s  ({t_adv:.2f} s)")
    print(f"plain VAE (recon+KL):                 {plain_rate:10.1f} samples/s  ({t_plain:.2f} s)")
    print(f"ratio adversarial / plain:            {adv_rate / plain_rate:10.3f}")


if __name__ == "__main__":
    main()
