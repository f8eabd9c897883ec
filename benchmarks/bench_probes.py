"""Benchmark: the attribute probe family against scikit-learn's probes on the same folds.

Run ``python benchmarks/bench_probes.py`` (``--quick`` for a run under a minute).  On
``SyntheticEmbeddings`` (1408-d, the CT Foundation width) it probes three attributes (sex, race,
age group) with five patient-grouped folds:

* **fairaudit**: the probe family (linear on every principal component, MLP with its L2 penalty
  chosen on an inner split and early stopping, gradient-boosted trees with early stopping),
  every fold, attribute and hyper-parameter trained at once (``attribute_probe``'s engine);
* **peer**: scikit-learn's ``LogisticRegression`` and ``MLPClassifier`` pipelines of the
  previous ``attribute_probe`` (standardise, PCA to 256 for the MLP, ``alpha=1``, early
  stopping), one fit per fold and attribute, on the same folds and rows, measured in the same run.

Prints each probe's out-of-fold ROC AUC with its patient bootstrap CI, whether the family's
linear/MLP AUCs fall inside the intervals of scikit-learn's (and vice versa: the strict line),
whether the family's strongest is not below the interval of the old probes' strongest (the
tuned MLP is a different model, stronger on some attributes and weaker on others), and
``probe speed-up: X×`` (peer time / family time, the family including its trees).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time


def _threads() -> int:
    """``--threads N`` (default 1), read before numpy starts its thread pools."""
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 1


THREADS = _threads()
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import numpy as np  # noqa: E402

ATTRIBUTES = ("sex", "race", "age_group")


def make_data(n: int, dim: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Embeddings, class codes of the three attributes, patient codes."""
    from fairaudit.builtin.datasets.synthetic_embeddings import SyntheticEmbeddings
    from fairaudit.stats.groups import patient_codes

    data = SyntheticEmbeddings(n_samples=n, dim=dim, seed=seed, sex_signal=2.0, race_signal=1.0,
                               age_signal=1.0, sex_nonlinear=1.0).load()
    codes = {}
    for attr in ATTRIBUTES:
        values = data.sensitive[attr].astype(str).to_numpy()
        classes = sorted(set(values))
        codes[attr] = np.searchsorted(np.array(classes), values)
    return np.asarray(data.X), codes, patient_codes(data.patient_ids, n)


def family(X: np.ndarray, codes: dict[str, np.ndarray], folds: object, device: str) -> dict[str, list[np.ndarray]]:
    """``attribute_probe``'s family with its default settings (no shuffled baseline)."""
    from fairaudit.builtin.metrics._probe_family import fit_family
    from fairaudit.builtin.metrics._probing import family_settings
    from fairaudit.builtin.metrics.attribute_probe import AttributeProbe

    p = AttributeProbe()
    settings = family_settings(p.name, list(p.probes), p.mlp_hidden, p.mlp_alpha, p.C, p.mlp_max_iter, p.max_dims,
                               0, device)
    values = [codes[a].astype(np.float64) for a in ATTRIBUTES]
    n_classes = [int(codes[a].max()) + 1 for a in ATTRIBUTES]
    out, info = fit_family(X, values, n_classes, folds, settings)  # type: ignore[arg-type]
    SECONDS.clear()
    SECONDS.update(info["seconds"])  # type: ignore[arg-type]
    return out


SECONDS: dict[str, float] = {}


def peer(X: np.ndarray, codes: dict[str, np.ndarray], folds: object) -> dict[str, list[np.ndarray]]:
    """The previous ``attribute_probe`` models (scikit-learn), fold by fold."""
    from fairaudit.builtin.metrics._probing import fit_predict, make_probe

    out: dict[str, list[np.ndarray]] = {"linear": [], "mlp": []}
    PEER_SECONDS.clear()
    for attr in ATTRIBUTES:
        y = codes[attr]
        k = int(y.max()) + 1
        task = "binary" if k == 2 else "multiclass"
        for kind in out:
            clock = time.perf_counter()
            oof = np.zeros((len(y), k))
            for train, test in folds.outer:  # type: ignore[attr-defined]
                model = make_probe(kind, task, seed=0, hidden=[64], max_iter=150, C=1.0, alpha=1.0,
                                   n_train=len(train), max_dims=256, n_features=X.shape[1])
                oof[test] = fit_predict(model, X[train], y[train], X[test], task, k)
            out[kind].append(oof)
            PEER_SECONDS[kind] = PEER_SECONDS.get(kind, 0.0) + time.perf_counter() - clock
    return out


PEER_SECONDS: dict[str, float] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 rows instead of 20,000 (under a minute)")
    parser.add_argument("--rows", type=int, default=None, help="rows (default 20,000; quick 5,000)")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help="CPU threads of both sides (torch and BLAS/OpenMP; default 1: a shared machine's "
                             "busy cores make thread teams wait, which would blur the comparison)")
    parser.add_argument("--device", default="cpu", help="torch device of the family (cpu, cuda)")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    n = args.rows or (5000 if args.quick else 20000)
    from fairaudit.builtin.metrics._probe_family import make_folds
    from fairaudit.stats.probes import bootstrap_family_auc

    X, codes, patients = make_data(n, 1408, seed=0)
    strata = np.zeros(n, dtype=np.int64)
    for attr in ATTRIBUTES:
        strata = strata * (int(codes[attr].max()) + 1) + codes[attr]
    folds = make_folds(strata, patients, 5, seed=0)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import torch

    torch.set_num_threads(args.threads)
    print(f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{cores} CPU core(s), load average {os.getloadavg()[0]:.1f}; "
          f"{n:,} rows x 1408, {len(ATTRIBUTES)} attributes, 5 folds")
    family(X[:300], {a: c[:300] for a, c in codes.items()}, make_folds(strata[:300], patients[:300], 5, 0),
           args.device)  # warm-up: torch and scikit-learn imports, thread pools
    t = time.perf_counter()
    ours = family(X, codes, folds, args.device)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    theirs = peer(X, codes, folds)
    t_peer = time.perf_counter() - t

    print(f"\n{'attribute':10s} {'probe':22s} {'AUC':>6s}  95% CI")
    agree = True  # strict: each member's AUC inside the other side's interval, both ways
    linear_agree = True
    family_holds = True  # the family's strongest not below the previous probes' strongest interval
    for i, attr in enumerate(ATTRIBUTES):
        probas = {f"fairaudit {m}": ours[m][i] for m in ours} | {f"scikit-learn {m}": theirs[m][i] for m in theirs}
        members, _ = bootstrap_family_auc(codes[attr], probas, patient_ids=patients, n_boot=args.n_boot, seed=i)
        fam = {k[len("fairaudit "):]: v for k, v in probas.items() if k.startswith("fairaudit")}
        _, strongest = bootstrap_family_auc(codes[attr], fam, patient_ids=patients, n_boot=args.n_boot, seed=i)
        for name, est in members.items():
            print(f"{attr:10s} {name:22s} {est.value:6.3f}  [{est.ci_low:.3f}, {est.ci_high:.3f}]")
        for kind in ("linear", "mlp"):
            a, b = members[f"fairaudit {kind}"], members[f"scikit-learn {kind}"]
            inside = b.ci_low <= a.value <= b.ci_high and a.ci_low <= b.value <= a.ci_high
            agree &= inside
            linear_agree &= inside or kind != "linear"
            print(f"{attr:10s} {kind} AUCs agree within each other's interval: {'yes' if inside else 'NO'}")
        best = max(fam, key=lambda k: members[f"fairaudit {k}"].value)
        print(f"{attr:10s} family's strongest: {best}, {strongest.value:.3f} "
              f"[{strongest.ci_low:.3f}, {strongest.ci_high:.3f}] (interval of the per-resample maximum)")
        old = max((members[f"scikit-learn {k}"] for k in ("linear", "mlp")), key=lambda e: e.value)
        holds = strongest.value >= old.ci_low
        family_holds &= holds
        print(f"{attr:10s} family's strongest not below the scikit-learn probes' strongest "
              f"({old.value:.3f} [{old.ci_low:.3f}, {old.ci_high:.3f}]): {'yes' if holds else 'NO'}\n")
    split = ", ".join(f"{k} {v:.1f} s" for k, v in SECONDS.items())
    print(f"fairaudit family (linear + MLP + trees): {t_ours:.1f} s ({split}); "
          f"scikit-learn linear + MLP: {t_peer:.1f} s (linear {PEER_SECONDS['linear']:.1f} s, "
          f"MLP {PEER_SECONDS['mlp']:.1f} s; same folds, same rows)")
    print(f"AUC agreement, strict (linear and MLP, each inside the other's interval, every attribute): "
          f"{'yes' if agree else 'NO'}")
    print(f"AUC agreement of the family (linear member strict; strongest not below the old strongest's "
          f"interval, every attribute): {'yes' if family_holds and linear_agree else 'NO'}")
    print(f"probe speed-up: {t_peer / t_ours:.1f}×")


if __name__ == "__main__":
    main()
