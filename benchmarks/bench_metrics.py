"""Benchmark: group-metric bootstrap CIs of fairaudit.stats against fairlearn's MetricFrame.

Run ``python benchmarks/bench_metrics.py`` (``--quick`` for a small run).  Prints

1. all confusion-matrix group metrics (8 rates per group and overall, max−min and to-overall
   differences and ratios, worst group, equalized odds) with 1000 bootstrap resamples on
   1,000,000 predictions and 4 groups (target: < 2 s on 2 CPU cores);
2. the same on 200,000 predictions, against fairlearn ``MetricFrame(n_boot=...)`` with the same
   rates, measured in the same run.  fairlearn's bootstrap is timed with a few resamples and
   extrapolated linearly to 1000 (``t(n_boot=0) + 1000 * per-resample time``): 1000 resamples
   would take tens of minutes (target: >= 100x faster);
3. AUC bootstraps (rows ranked once; per resample, integer patient counts and int32 cumulative
   sums for every group and overall at once) against re-sorting every resample (scikit-learn's
   ``roc_auc_score`` on each resampled group and on all rows), and the exact permutation test
   of the equal-opportunity gap.

Pin the cores for the 2-core figure, e.g. ``taskset -c 0,1 python benchmarks/bench_metrics.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import numpy as np  # noqa: E402

RATES = (
    "true_positive_rate",
    "false_positive_rate",
    "true_negative_rate",
    "false_negative_rate",
    "positive_predictive_value",
    "negative_predictive_value",
    "selection_rate",
    "accuracy",
)


def make_data(n: int, n_groups: int = 4, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Labels, scores, predictions at 0.5 and string group labels with group-dependent TPR."""
    rng = np.random.default_rng(seed)
    names = np.array([f"group_{i}" for i in range(n_groups)], dtype=object)
    gi = rng.choice(n_groups, n, p=np.linspace(1, 2, n_groups) / np.linspace(1, 2, n_groups).sum())
    y = (rng.random(n) < 0.3).astype(np.int64)
    score = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) * (1 - 0.1 * gi) + rng.normal(0, 1.2, n))))
    pred = (score >= 0.5).astype(np.int64)
    return y, score, pred, names[gi]


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(first run, best of ``repeats``) wall-clock seconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times[0], min(times)


def ours_all_confusion(y: np.ndarray, pred: np.ndarray, groups: np.ndarray, n_boot: int) -> object:
    from fairaudit.stats import bootstrap_group_metrics

    return bootstrap_group_metrics(y, pred, groups, n_boot=n_boot, seed=0, metrics=list(RATES))


def fairlearn_metrics() -> dict[str, Callable[..., float]]:
    from fairlearn.metrics import (
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_negative_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, precision_score

    def npv(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return precision_score(1 - np.asarray(y_true), 1 - np.asarray(y_pred), zero_division=0)

    return {
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "tnr": true_negative_rate,
        "fnr": false_negative_rate,
        "ppv": lambda a, b: precision_score(a, b, zero_division=0),
        "npv": npv,
        "selection_rate": selection_rate,
        "accuracy": accuracy_score,
    }


def fairlearn_time(
    y: np.ndarray, pred: np.ndarray, groups: np.ndarray, n_boot: int, only: tuple[str, ...] = ()
) -> tuple[float, float]:
    """(seconds without bootstrap, seconds per bootstrap resample) for MetricFrame."""
    from fairlearn.metrics import MetricFrame

    metrics = {k: v for k, v in fairlearn_metrics().items() if not only or k in only}

    def frame(**kw: object) -> None:
        mf = MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=groups, **kw)
        mf.difference()
        mf.ratio()
        mf.difference(method="to_overall")

    t0 = best_of(frame, 2)[1]
    t = time.perf_counter()
    frame(n_boot=n_boot, ci_quantiles=[0.025, 0.975], random_state=0)
    tb = time.perf_counter() - t
    return t0, max(tb - t0, 1e-9) / n_boot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    parser.add_argument(
        "--fairlearn-boot",
        type=int,
        default=None,
        help="fairlearn resamples actually run before extrapolating (default 5; quick 2)",
    )
    args = parser.parse_args()
    n_big, n_cmp, n_boot = (100_000, 20_000, 1000) if args.quick else (1_000_000, 200_000, 1000)
    fl_boot = args.fairlearn_boot or (2 if args.quick else 5)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{cores} CPU core(s) available, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    )

    import fairaudit.stats  # noqa: F401 - import time is not part of the measurement

    # 1. the headline figure
    y, _, pred, groups = make_data(n_big)
    first, best = best_of(lambda: ours_all_confusion(y, pred, groups, n_boot), 3)
    print(
        f"\n[1] all confusion-matrix group metrics, {n_boot} resamples, {n_big:,} predictions, "
        f"4 groups (incl. encoding string labels)"
    )
    print(
        f"    fairaudit: {best:.3f} s (best of 3; first run {first:.3f} s)"
        "   target < 2 s on 2 cores"
    )

    # 2. against fairlearn on the same inputs
    y2, score2, pred2, groups2 = make_data(n_cmp, seed=1)
    _, ours2 = best_of(lambda: ours_all_confusion(y2, pred2, groups2, n_boot), 3)
    t0, per = fairlearn_time(y2, pred2, groups2, fl_boot)
    fl_total = t0 + n_boot * per
    print(f"\n[2] same metrics, {n_cmp:,} predictions, {n_boot} resamples")
    print(f"    fairaudit: {ours2:.3f} s")
    print(
        f"    fairlearn MetricFrame: {t0:.2f} s without bootstrap + {per:.3f} s per resample "
        f"(measured with n_boot={fl_boot}) -> {fl_total:.0f} s extrapolated to n_boot={n_boot}"
    )
    print(f"    speed-up: {fl_total / ours2:,.0f}x   target >= 100x")
    t0, per = fairlearn_time(y2, pred2, groups2, fl_boot, only=("tpr", "fpr", "selection_rate"))
    fl_small = t0 + n_boot * per
    print(
        f"    fairlearn with only its own TPR, FPR and selection rate: {t0:.2f} s + {per:.3f} s "
        f"per resample -> {fl_small:.0f} s; speed-up (ours still computing all 8 rates): "
        f"{fl_small / ours2:,.0f}x"
    )

    # 3. AUC bootstrap without re-sorting; permutation test
    from sklearn.metrics import roc_auc_score

    from fairaudit.stats import bootstrap_auc, encode_groups, permutation_test_gap

    enc = encode_groups(groups2)
    first, t_auc = best_of(lambda: bootstrap_auc(y2, score2, enc, n_boot=n_boot, seed=0), 3)
    rng = np.random.default_rng(0)
    k = 20 if not args.quick else 5
    t = time.perf_counter()
    for _ in range(k):
        for gi in range(enc.n_groups):
            rows = np.flatnonzero(enc.codes == gi)
            r = rows[rng.integers(0, len(rows), len(rows))]
            roc_auc_score(y2[r], score2[r])
        r = rng.integers(0, n_cmp, n_cmp)
        roc_auc_score(y2[r], score2[r])
    t_naive = (time.perf_counter() - t) / k * n_boot
    print(f"\n[3] ROC AUC per group + overall, {n_boot} resamples, {n_cmp:,} predictions")
    print(
        f"    fairaudit (one rank pass, integer counts, int32 cumulative sums): {t_auc:.2f} s "
        f"(best of 3; first run {first:.2f} s); re-sorting each resample (sklearn roc_auc_score, "
        f"{k} resamples timed, extrapolated): {t_naive:.1f} s"
    )
    print(f"    AUC bootstrap speed-up: {t_naive / t_auc:.0f}x   target >= 100x")
    t = time.perf_counter()
    res = permutation_test_gap(
        y, pred, groups, metric="true_positive_rate", n_permutations=n_boot, seed=0
    )
    print(
        f"    exact permutation test of the TPR gap, {n_boot} permutations, {n_big:,} predictions: "
        f"{time.perf_counter() - t:.3f} s (p = {res.p_value:.4f})"
    )


if __name__ == "__main__":
    main()
