"""The acceptance protocol of ``tests/test_alphashift_acceptance.py`` at a chosen size.

    python plugins/fairaudit-alphashift/benchmarks/synthetic_cxr_shortcut.py [--size 64]

``synthetic_cxr`` with the device artefact tied to disease in group F (strength 1), heads on
the latent codes without and with randomised alpha shifts along the device direction;
reliance from oracle device counterfactuals on a shortcut-free test split, AUC on that split
and on one drawn like the training data; plus the device oracle on decoded alpha sweeps.
"""

from __future__ import annotations

import argparse
import os
import time


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=800)
    parser.add_argument("--n-test", type=int, default=300)
    parser.add_argument("--disease-strength", type=float, default=0.5)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--depth", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--alpha-max", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = parser.parse_args(argv)

    import torch
    from fairaudit_alphashift import AlphaShiftDebiaser
    from fairaudit_alphashift.evaluation import auc, fit_heads, reliance, score

    from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR, device_oracle

    torch.set_num_threads(args.threads)
    os.environ.setdefault("FAIRAUDIT_NO_PROGRESS", "1")
    common = {"image_size": args.size, "disease_strength": args.disease_strength}
    train = SyntheticCXR(n_samples=args.n_train, seed=0, shortcut_strength=1.0,
                         shortcut_group="F", **common).load()
    free = SyntheticCXR(n_samples=args.n_test, seed=1, shortcut_strength=0.0, **common).load()
    same = SyntheticCXR(n_samples=args.n_test, seed=2, shortcut_strength=1.0,
                        shortcut_group="F", **common).load()
    sens = train.sensitive.assign(device=train.extras["device"])
    deb = AlphaShiftDebiaser(
        image_size=args.size, latent_dim=args.latent_dim, width=args.width, depth=args.depth,
        lr=2e-3, max_epochs=args.epochs, batch_size=32, alpha_max=args.alpha_max, n_augment=4,
        bias_attributes=["device"], device="cpu", progress=False, random_state=0)
    start = time.perf_counter()
    deb.fit(train.images, train.y, sensitive_features=sens)
    ssim = deb.train_report_.val_ssim
    print(f"fit {time.perf_counter() - start:.0f} s, held-out SSIM {ssim:.3f}")
    heads = fit_heads(deb, train.images, train.y, sens)
    Z_free, Z_same = deb.transform(free.images), deb.transform(same.images)
    Z_cf = deb.transform(free.counterfactual("device"))
    res: dict[str, dict[str, float]] = {}
    for name, head in (("baseline", heads.baseline), ("mitigated", heads.mitigated)):
        p = score(head, Z_free)
        res[name] = {"auc_shortcut_free": auc(free.y, p),
                     "auc_same_distribution": auc(same.y, score(head, Z_same)),
                     **reliance(p, score(head, Z_cf))}
        print(f"  {name:<10} " + "  ".join(f"{k} {v:.3f}" for k, v in res[name].items()))
    sweep = deb.alpha_sweep(free.images[:60], "device", [-2.0, 2.0])
    print(f"device oracle on decoded sweep: alpha -2 -> {device_oracle(sweep[:, 0]).mean():.2f}, "
          f"+2 -> {device_oracle(sweep[:, 1]).mean():.2f}")
    return res


if __name__ == "__main__":
    main()
