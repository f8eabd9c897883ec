"""Benchmark: does SCLS track true shortcut reliance?  The graded-shortcut ladder, in full.

Run ``python benchmarks/bench_scls.py`` (about a minute; ``--quick``: 5 rungs, one seed, logistic
only, seconds).  For each classifier family (pixel logistic regression, one-hidden-layer MLP) and
ladder seed, 11 classifiers are trained on ``synthetic_cxr`` at shortcut strengths 0, 0.1, ... 1
(:mod:`fairaudit.testing.shortcut_ladder`); true reliance = decision flip rate under the oracle
device flip on a test split where the device is independent of the label.  Counterfactual sets:

* ``oracle``: the oracle's device flip;
* ``noisy``, ``partial``, ``noisy+partial``: the oracle edit with pixel noise (SD 0.05), with
  40 % failed and the rest faded to U(0.3, 1) of the edit, and both (30 % failed, U(0.5, 1), noise);
* ``painter``: an independent editor (inpaints the device away, pastes another image's device).

For each set it prints the Spearman correlation with the true reliance, and the mean absolute
error, of:

* ``SCLS v2`` (the metric now): decision flips per confirmed artefact edit;
* ``SCLS v1, device``: the first definition, P(artefact flipped | decision flipped), on the
  device set alone (1.0 whenever anything flips; NaN = constant);
* ``SCLS v1, pooled``: the same pooled with the disease set (degraded alike), as the examples ran it;
* ``flip rate``: the raw decision flip rate of the set (cf_sensitivity's formula on that set).
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from fairaudit.builtin.datasets.synthetic_cxr import device_oracle  # noqa: E402
from fairaudit.builtin.metrics.scls import SCLS  # noqa: E402
from fairaudit.testing.shortcut_ladder import (  # noqa: E402
    ShortcutLadder,
    build_ladder,
    imperfect_counterfactuals,
    paint_device,
    spearman,
)

DEGRADED = {
    "noisy": {"noise_sd": 0.05},
    "partial": {"fail_rate": 0.4, "fade": (0.3, 1.0)},
    "noisy+partial": {"fail_rate": 0.3, "fade": (0.5, 1.0), "noise_sd": 0.05},
}
DEFINITIONS = ("SCLS v2", "SCLS v1, device", "SCLS v1, pooled", "flip rate")


def _sets(ladder: ShortcutLadder) -> dict[str, dict[str, np.ndarray]]:
    """Each counterfactual condition: its device set and its disease set (degraded alike)."""
    x, oracle = ladder.images, ladder.oracle
    out = {"oracle": {"device": oracle["device"], "disease": oracle["disease"]}}
    for i, (name, how) in enumerate(DEGRADED.items()):
        out[name] = {f: imperfect_counterfactuals(x, oracle[f], seed=10 * i + j, **how)
                     for j, f in enumerate(("device", "disease"))}
    out["painter"] = {"device": paint_device(x, x), "disease": oracle["disease"]}
    return out


def _v1(flip: np.ndarray, art: np.ndarray) -> float:
    """The first SCLS: P(artefact flipped | decision flipped)."""
    return float(art[flip].mean()) if flip.any() else float("nan")


def _evaluate(ladder: ShortcutLadder) -> dict[str, dict[str, np.ndarray]]:
    """``{condition: {definition: value per rung}}``."""
    x = ladder.images
    a0 = device_oracle(x).astype(bool)
    out: dict[str, dict[str, np.ndarray]] = {}
    for cond, sets in _sets(ladder).items():
        art = {f: a0 != device_oracle(cf).astype(bool) for f, cf in sets.items()}
        values: dict[str, list[float]] = {d: [] for d in DEFINITIONS}
        for rung in ladder.rungs:
            d0 = rung.predict_fn(x) >= 0.5
            flip = {f: d0 != (rung.predict_fn(cf) >= 0.5) for f, cf in sets.items()}
            key = "oracle:device" if cond == "oracle" else "device"
            ctx = ladder.context(rung, {key: sets["device"]}, n_boot=20)
            values["SCLS v2"].append(SCLS(min_edits=1).compute(ctx)[0].value or float("nan"))
            values["SCLS v1, device"].append(_v1(flip["device"], art["device"]))
            values["SCLS v1, pooled"].append(_v1(np.r_[flip["device"], flip["disease"]],
                                                 np.r_[art["device"], art["disease"]]))
            values["flip rate"].append(float(flip["device"].mean()))
        out[cond] = {d: np.asarray(v) for d, v in values.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 rungs, seed 0, logistic only")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["logistic", "mlp"])
    ap.add_argument("--n-test", type=int, default=1200, help="test images (truth's sampling noise)")
    args = ap.parse_args()
    strengths = (0.0, 0.25, 0.5, 0.75, 1.0) if args.quick else tuple(np.round(np.linspace(0, 1, 11), 2))
    seeds, models = ([0], ["logistic"]) if args.quick else (args.seeds, args.models)
    rho: dict[tuple[str, str, str], list[float]] = {}
    mae: dict[tuple[str, str, str], list[float]] = {}
    for model in models:
        for seed in seeds:
            t = time.perf_counter()
            ladder = build_ladder(strengths, model=model, seed=seed, n_test=args.n_test)
            res = _evaluate(ladder)
            print(f"\n[{model}, seed {seed}] {len(strengths)} rungs, {time.perf_counter() - t:.1f} s")
            print("  strength      " + " ".join(f"{s:5.2f}" for s in strengths))
            print("  true reliance " + " ".join(f"{v:5.3f}" for v in ladder.true_reliance))
            print("  test AUC      " + " ".join(f"{r.auc:5.3f}" for r in ladder.rungs))
            for cond, by_def in res.items():
                for d, v in by_def.items():
                    rho.setdefault((model, cond, d), []).append(spearman(v, ladder.true_reliance))
                    mae.setdefault((model, cond, d), []).append(float(np.nanmean(np.abs(v - ladder.true_reliance))))
                    if seed == seeds[0] and d in ("SCLS v2", "SCLS v1, device"):
                        print(f"  {cond:13s} {d:16s} " + " ".join(f"{x:5.3f}" for x in v))
    print("\nSpearman with true reliance (mean [min] over seeds) | mean abs. error")
    for model in models:
        print(f"{model}:")
        for cond in ("oracle", *DEGRADED, "painter"):
            cells = []
            for d in DEFINITIONS:
                r, e = np.asarray(rho[(model, cond, d)]), np.asarray(mae[(model, cond, d)])
                cells.append(f"{d}: {np.nanmean(r) if np.isfinite(r).any() else float('nan'):.3f} "
                             f"[{np.nanmin(r) if np.isfinite(r).any() else float('nan'):.3f}] | {np.nanmean(e):.3f}")
            print(f"  {cond:13s} " + "; ".join(cells))


if __name__ == "__main__":
    main()
