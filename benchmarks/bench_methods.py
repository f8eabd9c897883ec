"""Seed methods against their baselines, over training seeds and a confirmation data seed.

    python benchmarks/bench_methods.py                 # 5 training seeds x data seeds 0 and 1
    python benchmarks/bench_methods.py --quick         # 2 seeds, data seed 0, fewer epochs
    python benchmarks/bench_methods.py --part advvae --json out.json

Part ``advvae``: ``synthetic_embeddings`` in the nonlinear-sex regime (n 2000, 64-d,
``sex_nonlinear: 2``: a linear mean shift *and* a variance signal), 70/30 split stratified by
sex and label and redrawn per training seed.  Arms: the raw embeddings (baseline), ``leace``,
``inlp``, ``advvae`` (its README defaults except latent 48, 60 epochs; ``hidden_dims: []``, the
paper's linear VAE), fairlearn ``exponentiated_gradient`` and ``threshold_optimizer`` (these two
leave the representation as it is).  Per arm: task AUC of a logistic head (C 0.1), EOD (TPR gap by
sex at 0.5), the strongest sex probe of fairaudit's family (linear, MLP, boosting; 5-fold CV on
the 600 test rows) and the *oracle* sex AUC (squared norm in the true sex subspace: the known
nonlinear signal, which a probe may or may not see at this n).

Part ``alphashift``: the acceptance protocol of ``fairaudit-alphashift`` (``synthetic_cxr``
32 px, 300 training images, device = disease in group F) per training seed (the autoencoder's
seed; the data are those of the acceptance test, data seed 0; confirmation: training images
drawn with seed 10).  Heads on the latent codes: baseline, alpha-shift (the method), projection
of the fitted device direction, LEACE of the device groups, and Kamiran-Calders reweighing over
(device, label) cells.  Reliance = mean |p(x) - p(cf(x))| with oracle device counterfactuals on a
shortcut-free split; AUC on that split and on one drawn like the training data.

Summaries are mean ± sd over seeds, and paired differences (method minus comparator, same seed)
with a 95 % t interval.  The criteria are in each plugin's README, written before the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

Row = dict[str, float]


# ---------------------------------------------------------------- statistics
def summary(values: list[float]) -> tuple[float, float]:
    """Mean and sample SD (0 for one value)."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Mean of ``a - b`` (paired by seed) and its 95 % t interval."""
    from scipy.stats import t

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) < 2:
        return float(d.mean()), float("nan"), float("nan")
    half = float(t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


# ---------------------------------------------------------------- part 1: advvae
def _eod(y: np.ndarray, scores: np.ndarray, male: np.ndarray) -> float:
    pred = scores >= 0.5
    return float(abs(pred[(y == 1) & male].mean() - pred[(y == 1) & ~male].mean()))


def _probe(Z: np.ndarray, y: np.ndarray, sensitive: Any, pid: np.ndarray, seed: int) -> tuple[float, dict]:
    from fairaudit.base import MetricContext, RunContext, StatsConfig
    from fairaudit.builtin.metrics.attribute_probe import AttributeProbe

    ctx = MetricContext(y_true=y, sensitive=sensitive.reset_index(drop=True), patient_ids=pid, attributes=["sex"],
                        stats=StatsConfig(n_boot=50, n_permutations=50, min_group_size=5, seed=seed),
                        features=np.asarray(Z, dtype=np.float32), context=RunContext(seed=seed))
    res = next(r for r in AttributeProbe(shuffled_baseline=False).compute(ctx)
               if r.metric == "attribute_probe_auc" and r.attribute == "sex")
    return float(res.value), dict(res.details.get("family", {}))


def _oracle(Z: np.ndarray, train: np.ndarray, test: np.ndarray, basis: np.ndarray, male: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    spread = np.sum(((Z[test] - Z[train].mean(0)) @ basis) ** 2, axis=1)
    a = float(roc_auc_score(male[test], spread))
    return max(a, 1.0 - a)


def advvae_seed(data_seed: int, seed: int, epochs: int) -> dict[str, Row]:
    """Every arm of part 1 for one (data seed, training seed)."""
    from fairaudit_advvae import AdversarialVAEDebiaser
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from fairaudit.builtin.datasets.synthetic_embeddings import SyntheticEmbeddings
    from fairaudit.builtin.debiasers import INLP, ExponentiatedGradientMitigation, LeaceEraser
    from fairaudit.builtin.debiasers import ThresholdOptimizerMitigation as TO
    from fairaudit.builtin.models.logistic import LogisticModel

    d = SyntheticEmbeddings(n_samples=2000, dim=64, seed=data_seed, sex_nonlinear=2.0).load()
    X, y, sf = d.X, d.y, d.sensitive
    male = (sf["sex"] == "M").to_numpy()
    strat = sf["sex"].astype(str) + y.astype(str)
    idx_tr, _ = train_test_split(np.arange(len(y)), test_size=0.3, stratify=strat, random_state=seed)
    train = np.zeros(len(y), bool)
    train[idx_tr] = True
    test = ~train
    basis = d.meta["ground_truth"]["bases"]["sex"]
    fit_args = {"sensitive_features": sf[train]}
    reps: dict[str, np.ndarray] = {"baseline": X}
    clock = {}
    for name, make in (("leace", lambda: LeaceEraser(attributes=["sex"])),
                       ("inlp", lambda: INLP(attributes=["sex"], random_state=seed)),
                       ("advvae", lambda: AdversarialVAEDebiaser(
                           attributes=["sex"], latent_dim=48, max_epochs=epochs, min_epochs=int(0.75 * epochs),
                           progress=False, device="cpu", random_state=seed))):
        start = time.perf_counter()
        reps[name] = np.asarray(make().fit(X[train], y[train], **fit_args).transform(X), dtype=np.float32)
        clock[name] = time.perf_counter() - start
    out: dict[str, Row] = {}
    for name, Z in reps.items():
        model = LogisticModel(C=0.1).fit(Z[train], y[train])
        p = model.predict_proba(Z[test])
        probe, family = _probe(Z[test], y[test], sf[test], d.patient_ids[test], seed)
        out[name] = {"task_auc": float(roc_auc_score(y[test], p)), "eod": _eod(y[test], p, male[test]),
                     "sex_probe": probe, "sex_probe_linear": float(family.get("linear", float("nan"))),
                     "sex_oracle": _oracle(Z, train, test, basis, male), "seconds": clock.get(name, 0.0)}
    base = LogisticModel(C=0.1).fit(X[train], y[train])
    eg = ExponentiatedGradientMitigation(attributes=["sex"]).fit_model(LogisticModel(C=0.1), X[train], y[train],
                                                                      **fit_args)
    to = TO(attributes=["sex"], random_state=seed).fit_model(base, X[train], y[train], **fit_args)
    for name, p in (("exponentiated_gradient", eg.predict_proba(X[test])),
                    ("threshold_optimizer", to.predict_proba(X[test], sensitive_features=sf[test]))):
        out[name] = {**out["baseline"], "task_auc": float(roc_auc_score(y[test], p)),
                     "eod": _eod(y[test], p, male[test]), "seconds": 0.0}
    return out


# ---------------------------------------------------------------- part 2: alpha-shift
def alphashift_seed(data_seed: int, seed: int, epochs: int, disease_strength: float = 0.35) -> dict[str, Row]:
    """Every head of part 2 for one (training-data seed, autoencoder seed)."""
    from fairaudit_alphashift import AlphaShiftDebiaser
    from fairaudit_alphashift.evaluation import auc, reliance
    from sklearn.linear_model import LogisticRegression

    from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR
    from fairaudit.builtin.debiasers import LeaceEraser, Reweighing

    common = {"image_size": 32, "disease_strength": disease_strength}
    train = SyntheticCXR(n_samples=300, seed=data_seed, shortcut_strength=1.0, shortcut_group="F", **common).load()
    free = SyntheticCXR(n_samples=300, seed=1, shortcut_strength=0.0, **common).load()
    same = SyntheticCXR(n_samples=300, seed=2, shortcut_strength=1.0, shortcut_group="F", **common).load()
    sens = train.sensitive.assign(device=train.extras["device"].astype(str))
    deb = AlphaShiftDebiaser(image_size=32, latent_dim=32, width=0.25, depth=0.0, lr=2e-3, max_epochs=epochs,
                             batch_size=32, alpha_max=2.0, n_augment=4, bias_attributes=["device"], device="cpu",
                             progress=False, random_state=seed)
    deb.fit(train.images, train.y, sensitive_features=sens)
    Z = deb.transform(train.images)
    Zf, Zs, Zc = deb.transform(free.images), deb.transform(same.images), deb.transform(free.counterfactual("device"))
    d = deb.direction_for("device")
    d = d / np.linalg.norm(d)
    leace = LeaceEraser(attributes=["device"]).fit(Z, train.y, sensitive_features=sens)
    Za, ya, _ = deb.transform_train(train.images, train.y, sensitive_features=sens)
    w = Reweighing(attributes=["device"]).fit(Z, train.y, sensitive_features=sens).sample_weight(
        train.y, sensitive_features=sens)

    def head(A, t, weight=None):
        return LogisticRegression(C=1.0, max_iter=5000).fit(A, t, sample_weight=weight)

    def proj(A):
        return A - np.outer(A @ d, d)

    arms = {"baseline": (head(Z, train.y), lambda A: A), "alphashift": (head(Za, ya), lambda A: A),
            "projection": (head(proj(Z), train.y), proj),
            "leace": (head(leace.transform(Z), train.y), leace.transform),
            "reweighing": (head(Z, train.y, w), lambda A: A)}
    out: dict[str, Row] = {}
    for name, (h, f) in arms.items():
        p = h.predict_proba(f(Zf))[:, 1]
        out[name] = {"auc_shortcut_free": auc(free.y, p), "auc_same": auc(same.y, h.predict_proba(f(Zs))[:, 1]),
                     **reliance(p, h.predict_proba(f(Zc))[:, 1])}
    return out


# ---------------------------------------------------------------- driver
def report(part: str, runs: dict[int, list[dict[str, Row]]], comparisons: list[tuple[str, str]]) -> dict:
    """Print mean ± sd per arm and measure, and paired differences; return them as data."""
    out: dict[str, Any] = {}
    for data_seed, rows in runs.items():
        arms = list(rows[0])
        measures = [m for m in rows[0][arms[0]] if m != "seconds"]
        print(f"\n[{part}] data seed {data_seed}, {len(rows)} training seeds: mean ± sd")
        print(f"{'arm':<24}" + "".join(f"{m:>22}" for m in measures))
        table = {}
        for arm in arms:
            cells = {m: summary([r[arm][m] for r in rows]) for m in measures}
            table[arm] = {m: {"mean": v[0], "sd": v[1], "values": [r[arm][m] for r in rows]} for m, v in cells.items()}
            print(f"{arm:<24}" + "".join(f"{v[0]:>14.3f} ± {v[1]:<5.3f}" for v in cells.values()))
        diffs = {}
        print("paired differences (a - b), mean [95% t interval]:")
        for a, b in comparisons:
            for m in measures:
                mean, lo, hi = paired([r[a][m] for r in rows], [r[b][m] for r in rows])
                diffs[f"{a} - {b}: {m}"] = {"mean": mean, "low": lo, "high": hi}
                print(f"  {a} - {b}: {m:<20} {mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        out[str(data_seed)] = {"arms": table, "paired": diffs}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, data seed 0 only, fewer epochs")
    parser.add_argument("--part", choices=["advvae", "alphashift", "all"], default="all")
    parser.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1")
    parser.add_argument("--advvae-epochs", type=int, default=60)
    parser.add_argument("--alphashift-epochs", type=int, default=15)
    parser.add_argument("--disease-strength", type=float, default=0.35,
                        help="synthetic_cxr opacity contrast in part alphashift (its acceptance test uses 0.5)")
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)
    os.environ.setdefault("FAIRAUDIT_NO_PROGRESS", "1")
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    seeds = range(2 if args.quick else args.seeds)
    result: dict[str, Any] = {"args": vars(args)}
    start = time.perf_counter()
    if args.part in ("advvae", "all"):
        epochs = 20 if args.quick else args.advvae_epochs
        runs = {ds: [advvae_seed(ds, s, epochs) for s in seeds] for ds in ((0,) if args.quick else (0, 1))}
        result["advvae"] = report("advvae", runs, [("advvae", "leace"), ("advvae", "inlp"), ("advvae", "baseline"),
                                                   ("threshold_optimizer", "baseline")])
    if args.part in ("alphashift", "all"):
        epochs = 5 if args.quick else args.alphashift_epochs
        data_seeds = (0,) if args.quick else (0, 10)
        runs = {ds: [alphashift_seed(ds, s, epochs, args.disease_strength) for s in seeds] for ds in data_seeds}
        result["alphashift"] = report("alphashift", runs, [("alphashift", "baseline"), ("alphashift", "projection"),
                                                           ("alphashift", "leace"), ("alphashift", "reweighing")])
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
