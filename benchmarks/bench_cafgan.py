"""Benchmark: CAF-GAN against plain WGAN-GP, train on synthetic / test on real, over seeds.

Run ``python benchmarks/bench_cafgan.py`` (26 minutes on a 2-core machine at load 6-10) or
``--quick`` (one GAN seed, two arms, 20 generator steps: about a minute; used by the test).

Data: ``synthetic_cxr`` at 32 px with a support-device shortcut tied to men
(``shortcut_strength 0.8``), the data of the plugin's pre-registered acceptance test; train,
validation, test and judge samples are separate draws (seeds 0, 2, 1, 3).

Factorial design: GAN seeds x lambda_fair (0 = plain WGAN-GP with lambda_clinic 0; 0.1, 0.3, 1
with lambda_clinic 0.5) x synthetic sampling (``as_data`` | ``balanced``) x downstream seeds.
For every GAN:

* its monitor (own critics: soft TPR gap, clinical loss) and its own-U-Net implausible rate;
* the **independent judges** (``fairaudit_cafgan.judges``, trained on the judge sample):
  implausible-mask rate of an independent segmenter, label / group AUC of independent readers
  against the conditions, real-vs-generated two-sample AUC; on a balanced set of generated images;
* per sampling and downstream seed, a fresh small CNN trained on the synthetic set, scored on
  the real test split: AUC, EOD at 0.5 (pre-registered), EOD at the threshold calibrated on the
  real validation split (Youden), per-group AUC gap (``fairaudit_cafgan.endpoints``).

Prints the endpoint table (mean +- sd over GAN x downstream seeds) and the pre-registered
criterion (CAF-GAN lambda_fair 1 / lambda_clinic 0.5, ``as_data``, against plain WGAN-GP at
equal seeds: EOD at 0.5 lower and AUC not more than 0.03 lower), and writes everything to
``--out`` (JSON, default ``benchmarks/results/bench_cafgan.json``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("FAIRAUDIT_NO_PROGRESS", "1")

import numpy as np  # noqa: E402

DATA = {"image_size": 32, "shortcut_strength": 0.8, "shortcut_group": "M"}
#: The acceptance test's network sizes; ``n_steps`` is set per mode.
ARM = {
    "image_size": 32,
    "z_dim": 32,
    "base_channels": 8,
    "batch_size": 32,
    "n_critic": 3,
    "lr_g": 5e-4,
    "lr_d": 5e-4,
    "classifier_epochs": 15,
    "segmenter_epochs": 8,
    "critic_channels": 8,
    "segmenter_channels": 4,
    "device": "cpu",
    "progress": False,
}
LAMBDA_CLINIC = 0.5
#: The pre-registered comparison: this lambda_fair (with LAMBDA_CLINIC) against 0, ``as_data``.
PREREGISTERED_LAMBDA = 1.0
AUC_MARGIN = 0.03

FULL = {"gan_seeds": [0, 1, 2], "ds_seeds": [0, 1, 2], "lambdas": [0.0, 0.1, 0.3, 1.0],
        "samplings": ["as_data", "balanced"], "n_steps": 100, "n_train": 512, "n_val": 500, "n_test": 1000,
        "n_judge": 512, "n_judged": 400, "ds_epochs": 20, "judge_epochs": 10}
QUICK = {"gan_seeds": [0], "ds_seeds": [0], "lambdas": [0.0, 1.0], "samplings": ["as_data", "balanced"],
         "n_steps": 20, "n_train": 192, "n_val": 160, "n_test": 240, "n_judge": 192, "n_judged": 80,
         "ds_epochs": 6, "judge_epochs": 3, "classifier_epochs": 4, "segmenter_epochs": 3}


def load_splits(cfg: dict[str, Any]) -> dict[str, Any]:
    from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR

    sizes = {"train": (cfg["n_train"], 0), "val": (cfg["n_val"], 2), "test": (cfg["n_test"], 1),
             "judge": (cfg["n_judge"], 3)}
    return {k: SyntheticCXR(n_samples=n, seed=s, **DATA).load() for k, (n, s) in sizes.items()}


def downstream(cfg: dict[str, Any], seed: int) -> Any:
    from fairaudit.builtin.models.cnn import SmallCNN

    return SmallCNN(channels=[8, 16, 32], lr=1e-2, patience=8, max_epochs=cfg["ds_epochs"], device="cpu",
                    random_state=seed)


def evaluate_downstream(cfg: dict[str, Any], splits: dict[str, Any], X: np.ndarray, y: np.ndarray,
                        seed: int) -> dict[str, Any]:
    from fairaudit_cafgan.endpoints import endpoints
    from fairaudit_cafgan.generator import group_values

    model = downstream(cfg, seed).fit(X, y)
    val, test = splits["val"], splits["test"]
    return endpoints(test.y, model.predict_proba(np.asarray(test.images, np.float32)),
                     group_values(test.sensitive, "sex"), val.y,
                     model.predict_proba(np.asarray(val.images, np.float32)))


def balanced_conditions(n: int) -> tuple[np.ndarray, Any]:
    import pandas as pd

    per = n // 4
    y = np.repeat([0, 0, 1, 1], per)
    sex = np.tile(np.repeat(["F", "M"], per), 2)
    return y, pd.DataFrame({"sex": sex})


def run(cfg: dict[str, Any], out: Path, log: Any = print) -> dict[str, Any]:
    import torch
    from fairaudit_cafgan import CAFGAN
    from fairaudit_cafgan.evaluation import synthetic_training_set
    from fairaudit_cafgan.judges import Judges

    from fairaudit.atomic import write_json

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    splits = load_splits(cfg)
    judges = Judges(segmenter_epochs=cfg["judge_epochs"]).fit(splits["judge"])
    test = splits["test"]
    y_j, sf_j = balanced_conditions(cfg["n_judged"])
    rows_real = np.random.default_rng(0).choice(len(test), size=min(cfg["n_judged"], len(test)), replace=False)
    record: dict[str, Any] = {
        "config": cfg, "data": DATA, "arm": ARM, "lambda_clinic": LAMBDA_CLINIC,
        "machine": {"python": sys.version.split()[0], "torch": torch.__version__, "cpu": platform.machine(),
                    "threads": 1},
        "judges": {"segmenter_dice": judges.fitted["segmenter_dice"],
                   "real_test": judges.score(test.images[rows_real], test.y[rows_real],
                                             test.sensitive.iloc[rows_real].reset_index(drop=True))},
        "baseline": [], "gans": [],
    }
    log(f"judges trained ({time.perf_counter() - t0:.0f} s): {record['judges']}")
    for ds in cfg["ds_seeds"]:
        record["baseline"].append({"ds_seed": ds, **evaluate_downstream(
            cfg, splits, np.asarray(splits["train"].images, np.float32), splits["train"].y, ds)})
    extra = {k: cfg[k] for k in ("classifier_epochs", "segmenter_epochs") if k in cfg}
    for gan_seed in cfg["gan_seeds"]:
        for lam in cfg["lambdas"]:
            t = time.perf_counter()
            gen = CAFGAN(**{**ARM, **extra}, n_steps=cfg["n_steps"], random_state=gan_seed, lambda_fair=lam,
                         lambda_clinic=LAMBDA_CLINIC if lam > 0 else 0.0).fit(splits["train"])
            fit_s = time.perf_counter() - t
            last = gen.history_[-1]
            entry: dict[str, Any] = {
                "gan_seed": gan_seed, "lambda_fair": lam, "fit_s": fit_s,
                "own_critics": {"monitor_fairness": last["monitor_fairness"],
                                "monitor_clinical": last["monitor_clinical"],
                                "implausible_rate": gen.generated_plausibility_.get("implausible_rate")},
                "judges": judges.score(gen.generate(y_j, sf_j), y_j, sf_j),
                "downstream": [],
            }
            for sampling in cfg["samplings"]:
                X, y = synthetic_training_set(gen, splits["train"], seed=gan_seed, sampling=sampling)
                for ds in cfg["ds_seeds"]:
                    entry["downstream"].append({"sampling": sampling, "ds_seed": ds,
                                                **evaluate_downstream(cfg, splits, X, y, ds)})
            record["gans"].append(entry)
            record["elapsed_s"] = time.perf_counter() - t0
            write_json(out, record)
            log(f"GAN seed {gan_seed} lambda_fair {lam}: fit {fit_s:.0f} s, total {record['elapsed_s'] / 60:.1f} min")
    record["summary"] = summarise(record)
    write_json(out, record)
    return record


# ---------------------------------------------------------------- summary
ENDPOINTS = ("auc", "eod_fixed", "eod_calibrated", "auc_gap")
JUDGED = ("implausible_rate", "reader_label_auc", "reader_group_auc", "c2st_auc")


def _ms(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}


def _rows(record: dict[str, Any], lam: float, sampling: str) -> dict[tuple[int, int], dict[str, Any]]:
    return {(g["gan_seed"], d["ds_seed"]): d for g in record["gans"] if g["lambda_fair"] == lam
            for d in g["downstream"] if d["sampling"] == sampling}


def summarise(record: dict[str, Any]) -> dict[str, Any]:
    """Mean +- sd per (lambda, sampling) over GAN x downstream seeds; judges per lambda over GAN
    seeds; the pre-registered criterion on paired (GAN seed, downstream seed) differences."""
    cfg = record["config"]
    table = {"baseline (real)": {e: _ms([b[e] for b in record["baseline"]]) for e in ENDPOINTS}}
    for lam in cfg["lambdas"]:
        for sampling in cfg["samplings"]:
            rows = list(_rows(record, lam, sampling).values())
            if rows:
                table[f"lambda_fair={lam} {sampling}"] = {e: _ms([r[e] for r in rows]) for e in ENDPOINTS}
    judged = {}
    for lam in cfg["lambdas"]:
        gans = [g for g in record["gans"] if g["lambda_fair"] == lam]
        if gans:
            judged[f"lambda_fair={lam}"] = {
                **{f"judge_{k}": _ms([g["judges"][k] for g in gans]) for k in JUDGED},
                **{f"own_{k}": _ms([g["own_critics"][k] for g in gans]) for k in gans[0]["own_critics"]},
            }
    criteria = {}
    plain_a = _rows(record, 0.0, "as_data")
    for lam in [x for x in cfg["lambdas"] if x > 0]:
        for sampling in cfg["samplings"]:
            caf = _rows(record, lam, sampling)
            pairs = sorted(set(caf) & set(plain_a))
            if not pairs:
                continue
            d_auc = [caf[p]["auc"] - plain_a[p]["auc"] for p in pairs]
            diffs = {e: _ms([caf[p][e] - plain_a[p][e] for p in pairs]) for e in ENDPOINTS}
            held = [caf[p]["eod_fixed"] < plain_a[p]["eod_fixed"] and d >= -AUC_MARGIN
                    for p, d in zip(pairs, d_auc, strict=True)]
            criteria[f"lambda_fair={lam} {sampling} vs plain as_data"] = {
                "difference": diffs,
                "pairs_held": int(sum(held)), "pairs": len(pairs),
                "holds_on_mean": bool(diffs["eod_fixed"]["mean"] < 0 and diffs["auc"]["mean"] >= -AUC_MARGIN),
            }
    gans = {lam: {g["gan_seed"]: g for g in record["gans"] if g["lambda_fair"] == lam} for lam in cfg["lambdas"]}
    seeds = sorted(set(gans.get(PREREGISTERED_LAMBDA, {})) & set(gans.get(0.0, {})))
    plaus = [gans[PREREGISTERED_LAMBDA][s]["judges"]["implausible_rate"] - gans[0.0][s]["judges"]["implausible_rate"]
             for s in seeds]
    return {"endpoints": table, "generators": judged, "criteria": criteria,
            "judge_implausible_difference": _ms(plaus) if plaus else None}


def _fmt(m: dict[str, float]) -> str:
    return f"{m['mean']:.3f} ± {m['sd']:.3f}"


def print_summary(summary: dict[str, Any]) -> None:
    print("\nEndpoints on the real test split (mean ± sd over GAN x downstream seeds)")
    print(f"{'arm':32s} " + " ".join(f"{e:>16s}" for e in ENDPOINTS))
    for name, row in summary["endpoints"].items():
        print(f"{name:32s} " + " ".join(f"{_fmt(row[e]):>16s}" for e in ENDPOINTS))
    print("\nGenerators (mean ± sd over GAN seeds; judge_* = independent judges, own_* = CAF-GAN's critics)")
    for name, row in summary["generators"].items():
        print(f"{name:16s} " + ", ".join(f"{k} {_fmt(v)}" for k, v in row.items()))
    print("\nPre-registered criterion: EOD@0.5 lower than plain WGAN-GP, AUC >= plain - 0.03 (paired seeds)")
    for name, c in summary["criteria"].items():
        d = c["difference"]
        print(f"{name:40s} dAUC {_fmt(d['auc'])}, dEOD@0.5 {_fmt(d['eod_fixed'])}, "
              f"dEOD@cal {_fmt(d['eod_calibrated'])}, dAUCgap {_fmt(d['auc_gap'])}; held in "
              f"{c['pairs_held']}/{c['pairs']} pairs; on the mean: {'PASS' if c['holds_on_mean'] else 'FAIL'}")
    if summary["judge_implausible_difference"]:
        print(f"judge implausible rate, CAF-GAN minus plain: {_fmt(summary['judge_implausible_difference'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one GAN seed, two arms, 20 steps")
    parser.add_argument("--out", type=Path, default=None, help="results JSON")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    out = args.out or Path(__file__).parent / "results" / ("bench_cafgan_quick.json" if args.quick
                                                           else "bench_cafgan.json")
    record = run(cfg, out)
    print_summary(record["summary"])
    print(f"\nwrote {out} ({record['elapsed_s'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
