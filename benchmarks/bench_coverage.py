"""Benchmark: coverage of fairaudit's intervals and error rates of its verdicts, known truth.

Run ``python benchmarks/bench_coverage.py`` (full grid, minutes) or ``--quick`` (< 60 s).

Score model (binormal, population values known exactly): in group ``g`` each patient has a
label ``y ~ Bernoulli(prevalence)`` shared by its ``k`` rows; a row's score is
``μ_{y,g} + σ_y (√ρ · u_patient + √(1 − ρ) · e_row)`` (``u, e ~ N(0, 1)``, ``ρ`` the
within-patient correlation, ``σ_0 = 1``) and is predicted positive when ``score >= 0``.  Hence
exactly ``TPR_g = Φ(μ_{1,g} / σ_1)``, ``FPR_g = Φ(μ_{0,g})`` and
``AUC_g = Φ((μ_{1,g} − μ_{0,g}) / √(1 + σ_1²))`` (a positive and a negative row never share a
patient), and every gap and ratio between
groups follows.  Each cell of the grid fixes group sizes, prevalence, rates (near 0 and 1
included), true gaps (0 to 0.2), number of groups (2 to 8) and rows per patient.

For every replicate it applies fairaudit's own rule and interval code
(:mod:`fairaudit.stats.intervals`, as ``group_metrics`` does): groups with fewer than 5
events are left out; the truth of a gap is the gap between the judged groups.  Reported per
interval type (per-group TPR/FPR, per-group AUC, max − min gap of TPR/FPR/AUC, min/max ratio,
worst group): coverage, mean width, **false FAIL** (threshold set exactly at the truth, the
interval entirely on the failing side: for a gap ``lower > truth``) and **false PASS**
(truth just beyond the threshold, the interval entirely on the passing side).  False FAILs
are counted from the interval alone: the verdict rule also needs the adjusted permutation p
below alpha, so its false-FAIL rate is at most this.

The full run also compares candidate methods (``--no-compare`` skips it): Wilson and
Clopper–Pearson exact binomial coverage; MOVER with Wilson limits; and the percentile and
bias-corrected bootstrap the engine used before (``bootstrap_confusion_counts``).

The last two lines are ``coverage min: X (± s.e.)`` and ``false-FAIL rate max: Y (± s.e.)``
over every cell and interval type of the chosen methods.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy.stats import binom, norm  # noqa: E402

from fairaudit.stats import intervals as ci  # noqa: E402
from fairaudit.stats.bootstrap import bootstrap_confusion_counts  # noqa: E402
from fairaudit.stats.confusion import rate  # noqa: E402

ALPHA = 0.05
MIN_EVENTS = 5
#: A cell's estimate counts towards the headline minimum only with this many judged intervals
#: (s.e. <= 0.015 at 0.95); rarer ones (e.g. AUC in groups of 20 at prevalence 0.05, judged in
#: 1% of replicates) are listed on their own.
MIN_N = 200
RATES = {"TPR": "true_positive_rate", "FPR": "false_positive_rate"}


@dataclass(frozen=True)
class Cell:
    """One grid point: group sizes (rows), prevalence, true rates, rows per patient."""

    name: str
    sizes: tuple[int, ...]
    prevalence: float
    tpr_top: float
    tpr_gap: float = 0.0
    fpr_low: float = 0.2
    fpr_gap: float = 0.0
    rows_per_patient: int = 1
    icc: float = 0.0
    sd_pos: float = 1.0  # SD of the positives' scores (1: equal-variance binormal)
    baseline: bool = False  # also run the previous engine's percentile bootstrap here

    def _spread(self) -> np.ndarray:
        g = len(self.sizes)
        return np.arange(g) / max(g - 1, 1)

    def truth(self) -> dict[str, np.ndarray]:
        tpr = self.tpr_top - self.tpr_gap * self._spread()
        fpr = self.fpr_low + self.fpr_gap * self._spread()
        auc = norm.cdf((self.sd_pos * norm.ppf(tpr) - norm.ppf(fpr)) / math.sqrt(1 + self.sd_pos**2))
        return {"TPR": tpr, "FPR": fpr, "AUC": auc}


@dataclass
class Sample:
    """Replicates of one cell: confusion counts, cluster statistics, AUC summaries, raw rows."""

    counts: np.ndarray  # (R, G, 4)
    clusters: ci.ClusterStats | None  # batched (R, G, ...)
    auc: np.ndarray  # (6, R, G): auc, DeLong variance, positives, negatives, patients, smaller class's patients
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


def simulate(cell: Cell, reps: int, rng: np.random.Generator, keep_rows: int = 0) -> Sample:
    truth = cell.truth()
    mu1, mu0 = cell.sd_pos * norm.ppf(truth["TPR"]), norm.ppf(truth["FPR"])
    k, rho = cell.rows_per_patient, cell.icc
    g_count = len(cell.sizes)
    counts = np.zeros((reps, g_count, 4))
    moments = np.zeros((reps, g_count, 4, 4))
    patterns = np.zeros((reps, g_count, 16))
    auc = np.full((6, reps, g_count), np.nan)
    raw: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(min(keep_rows, reps))]
    bits = 1 << np.arange(4)
    for g, size in enumerate(cell.sizes):
        n_pat = max(1, round(size / k))
        y = (rng.random((reps, n_pat)) < cell.prevalence).astype(np.int64)
        u = rng.standard_normal((reps, n_pat, 1))
        e = rng.standard_normal((reps, n_pat, k))
        noise = math.sqrt(rho) * u + math.sqrt(1 - rho) * e
        score = np.where(y[..., None] == 1, mu1[g] + cell.sd_pos * noise, mu0[g] + noise)
        cells = 2 * y[..., None] + (score >= 0)
        per_patient = np.stack([(cells == c).sum(-1) for c in range(4)], axis=-1)  # (R, P, 4)
        counts[:, g] = per_patient.sum(1)
        moments[:, g] = np.einsum("rpi,rpj->rij", per_patient, per_patient)
        mask = (per_patient > 0) @ bits
        for m in range(16):
            patterns[:, g, m] = (mask == m).sum(1)
        y_rows = np.repeat(y, k, axis=1)
        patient = np.repeat(np.arange(n_pat), k)
        for r in range(reps):
            a, var, c, smaller = ci.auc_variance(y_rows[r], score[r].reshape(-1), patient if k > 1 else None)
            auc[:, r, g] = (a, var, y_rows[r].sum(), (1 - y_rows[r]).sum(),
                            c if k > 1 else np.inf, smaller if k > 1 else np.inf)
            if r < len(raw):
                raw[r].append((y_rows[r], (score[r].reshape(-1) >= 0).astype(np.int64), patient + 10**6 * g))
    clusters = None
    if k > 1:
        clusters = ci.ClusterStats(moments, patterns, np.zeros(g_count, dtype=bool))
    rows = []
    for parts in raw:
        y_r = np.concatenate([p[0] for p in parts])
        pred_r = np.concatenate([p[1] for p in parts])
        pat_r = np.concatenate([p[2] for p in parts])
        grp_r = np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(parts)])
        rows.append((y_r, pred_r, grp_r, pat_r))
    return Sample(counts, clusters, auc, rows)


# ---------------------------------------------------------------- tallies
@dataclass
class Tally:
    """Coverage and one-sided misses of one interval type in one cell."""

    n: int = 0
    covered: int = 0
    below: int = 0  # interval entirely below the truth
    above: int = 0  # interval entirely above the truth
    width: float = 0.0
    n_pass: int = 0  # replicates where a false PASS is possible (truth strictly inside the range)
    false_pass: int = 0

    def add(self, low: np.ndarray, high: np.ndarray, truth: np.ndarray, kind: str) -> None:
        low, high, truth = np.broadcast_arrays(low, high, truth)
        ok = np.isfinite(low) & np.isfinite(high) & np.isfinite(truth)
        low, high, truth = low[ok], high[ok], truth[ok]
        eps = 1e-12
        self.n += len(low)
        self.covered += int(((low <= truth + eps) & (truth <= high + eps)).sum())
        self.below += int((high < truth - eps).sum())
        self.above += int((low > truth + eps).sum())
        self.width += float((high - low).sum())
        if kind == "gap":  # PASS of "gap <= bound" with bound just under a positive truth
            room = truth > 0
            self.n_pass += int(room.sum())
            self.false_pass += int((high[room] < truth[room] - eps).sum())
        elif kind == "ratio":  # PASS of "ratio >= bound" with bound just over a truth below 1
            room = truth < 1
            self.n_pass += int(room.sum())
            self.false_pass += int((low[room] > truth[room] + eps).sum())
        else:
            self.n_pass += len(low)
            self.false_pass += int(np.maximum((high < truth - eps).sum(), (low > truth + eps).sum()))

    def false_fail(self, kind: str) -> int:
        if kind == "gap":  # FAIL of "gap <= truth": lower bound above it
            return self.above
        if kind == "ratio":  # FAIL of "ratio >= truth": upper bound below it
            return self.below
        return max(self.above, self.below)  # a value: either direction of threshold


def _se(k: int, n: int) -> float:
    p = k / n if n else float("nan")
    return math.sqrt(max(p * (1 - p), 0.25 / max(n, 1)) / max(n, 1))


# ---------------------------------------------------------------- the engine's intervals
def _judged(events: list[np.ndarray]) -> np.ndarray:
    ok = np.ones(events[0].shape, dtype=bool)
    for e in events:
        ok &= e >= MIN_EVENTS
    return ok


def _subset_clusters(cl: ci.ClusterStats | None, rows: np.ndarray, idx: np.ndarray) -> ci.ClusterStats | None:
    if cl is None:
        return None
    return ci.ClusterStats(cl.moments[rows][:, idx], cl.patterns[rows][:, idx], cl.singleton[idx])


Estimator = Callable[[np.ndarray, np.ndarray, np.ndarray], ci.GroupEstimates]


def evaluate(
    cell: Cell,
    s: Sample,
    tallies: dict[str, Tally],
    rate_estimator: Callable[[np.ndarray, str, ci.ClusterStats | None], ci.GroupEstimates] = ci.rate_estimates,
    prefix: str = "",
) -> None:
    """Tally every interval type of one cell's replicates (the engine's methods by default)."""
    truth = cell.truth()
    den_cells = {"TPR": [2, 3], "FPR": [0, 1]}
    for short, name in RATES.items():
        events = s.counts[..., den_cells[short]].sum(-1)
        judged = _judged([events])
        est = rate_estimator(s.counts, name, s.clusters)
        lo, hi = est.limits(1 - ALPHA)
        tallies.setdefault(f"{prefix}{short} per group", Tally()).add(
            np.where(judged, lo, np.nan), hi, truth[short][None, :], "value"
        )
        def make(rows: np.ndarray, idx: np.ndarray, n: str = name) -> ci.GroupEstimates:
            return rate_estimator(s.counts[rows][:, idx], n, _subset_clusters(s.clusters, rows, idx))

        _family(tallies, prefix, short, judged, truth[short], make)
        if not prefix:
            _to_overall(cell, s, tallies, short, name, judged)
    if prefix:
        return
    a_hat, var, n_pos, n_neg, patients, smaller = s.auc
    judged = _judged([n_pos, n_neg])
    rows_per = n_pos + n_neg
    est = ci.auc_estimates_from(a_hat, var, n_pos, n_neg, patients, rows_per, smaller)
    lo, hi = est.limits(1 - ALPHA)
    tallies.setdefault("AUC per group", Tally()).add(np.where(judged, lo, np.nan), hi, truth["AUC"][None, :], "value")
    summaries = (a_hat, var, n_pos, n_neg, patients, rows_per, smaller)

    def make_auc(rows: np.ndarray, idx: np.ndarray) -> ci.GroupEstimates:
        return ci.auc_estimates_from(*(x[rows][:, idx] for x in summaries))

    _family(tallies, prefix, "AUC", judged, truth["AUC"], make_auc, ratio=False)


def _family(
    tallies: dict[str, Tally],
    prefix: str,
    short: str,
    judged: np.ndarray,
    true_values: np.ndarray,
    make: Callable[[np.ndarray, np.ndarray], ci.GroupEstimates],
    ratio: bool = True,
) -> None:
    """Gap, ratio and worst-group intervals, one batch per set of judged groups."""
    patterns, which = np.unique(judged, axis=0, return_inverse=True)
    which = which.reshape(-1)
    for p_i, pattern in enumerate(patterns):
        idx = np.flatnonzero(pattern)
        rows = np.flatnonzero(which == p_i)
        if len(idx) < 2:
            continue
        est = make(rows, idx)
        t = true_values[idx]
        gap = ci.gap_bounds(est, ALPHA)
        tally = tallies.setdefault(f"{prefix}{short} max−min gap", Tally())
        tally.add(gap.ci_low, gap.ci_high, t.max() - t.min(), "gap")
        if ratio:
            rb = ci.ratio_bounds(est, ALPHA)
            tally = tallies.setdefault(f"{prefix}{short} min/max ratio", Tally())
            tally.add(rb.ci_low, rb.ci_high, t.min() / t.max(), "ratio")
        hib = short != "FPR"
        wb = ci.worst_bounds(est, ALPHA, hib)
        tallies.setdefault(f"{prefix}{short} worst group", Tally()).add(
            wb.ci_low, wb.ci_high, t.min() if hib else t.max(), "value"
        )


def _to_overall(cell: Cell, s: Sample, tallies: dict[str, Tally], short: str, name: str, judged: np.ndarray) -> None:
    """fairlearn's ``to_overall`` difference and ratio (the overall pools every group, judged or not)."""
    truth = cell.truth()[short]
    share = np.asarray(cell.sizes, dtype=np.float64) * (cell.prevalence if short == "TPR" else 1 - cell.prevalence)
    overall = float((share * truth).sum() / share.sum())
    den = s.counts[..., [2, 3] if short == "TPR" else [0, 1]].sum(-1)
    rest_counts = s.counts.sum(1, keepdims=True) - s.counts
    rest_cl = None
    if s.clusters is not None:
        cl = s.clusters
        rest_cl = ci.ClusterStats(cl.moments.sum(1, keepdims=True) - cl.moments,
                                  cl.patterns.sum(1, keepdims=True) - cl.patterns, cl.singleton)
    patterns, which = np.unique(judged, axis=0, return_inverse=True)
    which = which.reshape(-1)
    for p_i, pattern in enumerate(patterns):
        idx = np.flatnonzero(pattern)
        rows = np.flatnonzero(which == p_i)
        if len(idx) < 2:
            continue
        est = ci.rate_estimates(s.counts[rows][:, idx], name, _subset_clusters(s.clusters, rows, idx))
        rest = ci.rate_estimates(rest_counts[rows][:, idx], name, _subset_clusters(rest_cl, rows, idx))
        w = den[rows][:, idx] / den[rows].sum(-1, keepdims=True)
        t = truth[idx]
        d = ci.to_overall_bounds(est, rest, w, ALPHA)
        tally = tallies.setdefault(f"{short} gap to overall", Tally())
        tally.add(d.ci_low, d.ci_high, np.abs(t - overall).max(), "gap")
        r = ci.to_overall_ratio_bounds(est, rest, w, ALPHA)
        ratio = np.minimum(t / overall, overall / t).min()
        tallies.setdefault(f"{short} ratio to overall", Tally()).add(r.ci_low, r.ci_high, ratio, "ratio")


# ---------------------------------------------------------------- candidates compared
def wilson_estimates(counts: np.ndarray, name: str, clusters: ci.ClusterStats | None) -> ci.GroupEstimates:
    """MOVER's building blocks with Wilson limits on the same effective sample size."""
    base = ci.rate_estimates(counts, name, clusters)
    c = np.asarray(counts, dtype=np.float64)
    spec_den = {"true_positive_rate": [2, 3], "false_positive_rate": [0, 1]}[name]
    n = c[..., spec_den].sum(-1)
    x = base.value * n
    n_eff, df = ci.effective_size(x, n, name, clusters)

    def fn(levels: list[float]) -> list[ci.Limits]:
        out = []
        for lv in levels:
            n_lv = ci.korn_graubard_size(n_eff, df, lv)
            lo, hi = ci.wilson(base.value * n_lv, n_lv, lv)
            none = np.isfinite(base.value) & (n_lv <= 0)  # no information: the whole range, as the engine
            out.append((np.where(none, 0.0, lo), np.where(none, 1.0, hi)))
        return out

    return ci.GroupEstimates(base.value, fn)


def bootstrap_baseline(cell: Cell, s: Sample, tallies: dict[str, Tally], n_boot: int, seed: int) -> None:
    """The previous engine: percentile (and bias-corrected) bootstrap of per-group TPR and its gap."""
    truth = cell.truth()["TPR"]
    for r, (y, pred, grp, pat) in enumerate(s.rows):
        boot, _ = bootstrap_confusion_counts(y, pred, grp, patient_ids=pat, n_boot=n_boot, seed=seed + r)
        pos = boot.counts[:, 2:].sum(-1)
        judged = pos >= MIN_EVENTS
        per = boot.estimate(lambda c: rate(c, "true_positive_rate"))
        tallies.setdefault("TPR per group [percentile bootstrap]", Tally()).add(
            np.where(judged, per.ci_low, np.nan), per.ci_high, truth, "value"
        )
        idx = np.flatnonzero(judged)
        if len(idx) < 2:
            continue
        gap = boot.estimate(lambda c, idx=idx: np.ptp(rate(c[..., idx, :], "true_positive_rate"), axis=-1))
        t = truth[idx].max() - truth[idx].min()
        tallies.setdefault("TPR max−min gap [percentile bootstrap]", Tally()).add(gap.ci_low, gap.ci_high, t, "gap")
        samples = np.asarray(gap.samples)
        prop = np.clip(np.mean(samples < gap.value), 0.5 / len(samples), 1 - 0.5 / len(samples))
        z0, z = norm.ppf(prop), norm.ppf(1 - ALPHA / 2)
        lo_q, hi_q = norm.cdf(2 * z0 - z), norm.cdf(2 * z0 + z)
        tallies.setdefault("TPR max−min gap [bias-corrected bootstrap]", Tally()).add(
            np.quantile(samples, lo_q), np.quantile(samples, hi_q), t, "gap"
        )


def exact_binomial_table() -> list[str]:
    """Exact coverage of per-group proportion intervals over p in [0.001, 0.999] (no Monte-Carlo error)."""
    ps = np.linspace(0.001, 0.999, 999)
    lines = ["| n | Clopper–Pearson min (mean) | Wilson min (mean) | Jeffreys min (mean) |", "|---|---|---|---|"]

    def jeffreys(x: np.ndarray, n: np.ndarray, level: float) -> ci.Limits:
        from fairaudit.stats.special import beta_ppf

        a = (1 - level) / 2
        lo = np.where(x > 0, beta_ppf(np.full(x.shape, a), x + 0.5, n - x + 0.5), 0.0)
        hi = np.where(x < n, beta_ppf(np.full(x.shape, 1 - a), x + 0.5, n - x + 0.5), 1.0)
        return lo, hi

    for n in (5, 10, 20, 31, 40, 100, 400, 2000):
        x = np.arange(n + 1, dtype=np.float64)
        cells = []
        for f in (ci.clopper_pearson, ci.wilson, jeffreys):
            lo, hi = f(x, np.full(n + 1, float(n)), 1 - ALPHA)
            pmf = binom.pmf(x[None, :], n, ps[:, None])
            cov = (pmf * ((lo[None, :] <= ps[:, None]) & (ps[:, None] <= hi[None, :]))).sum(1)
            cells.append(f"{cov.min():.3f} ({cov.mean():.3f})")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


# ---------------------------------------------------------------- grids
def grid(quick: bool) -> list[Cell]:
    q = [
        Cell("2×40, TPR .8, no gap", (40, 40), 0.4, 0.8),
        Cell("4×40, TPR .8, no gap, prev .5", (40, 40, 40, 40), 0.5, 0.8, baseline=True),
        Cell("400/60/40/35, prev .4, no gap", (400, 60, 40, 35), 0.4, 0.75, baseline=True),
        Cell("2×80, TPR .97 (31 pos.), no gap", (80, 80), 0.39, 0.97, fpr_low=0.02, baseline=True),
        Cell("2×2000, TPR .97 / FPR .02", (2000, 2000), 0.1, 0.97, 0.02, fpr_low=0.02),
        Cell("2×200, gap .2", (200, 200), 0.5, 0.8, 0.2),
        Cell("4×200, gap .1, prev .2", (200, 200, 200, 200), 0.2, 0.85, 0.1, fpr_gap=0.05),
        Cell("8 groups 20–2000, prev .5", (2000, 1000, 400, 200, 100, 60, 40, 20), 0.5, 0.8, 0.1),
        Cell("8×40, no gap", (40,) * 8, 0.5, 0.7),
        Cell("2×2000, prev .05, gap .05", (2000, 2000), 0.05, 0.8, 0.05, fpr_low=0.05),
        Cell("4×20, prev .5, gap .2", (20, 20, 20, 20), 0.5, 0.9, 0.2),
        Cell("3 rows/patient, ρ .5, 2×120", (120, 120), 0.4, 0.8, 0.0, rows_per_patient=3, icc=0.5),
        Cell("3 rows/patient, ρ .8, 4×90, gap .1", (90, 90, 90, 90), 0.4, 0.9, 0.1, rows_per_patient=3, icc=0.8),
        Cell("3 rows/patient, TPR .97, 2×300", (300, 300), 0.3, 0.97, fpr_low=0.03, rows_per_patient=3, icc=0.5),
        Cell("unequal variances σ1 2, 4×60", (60, 60, 60, 60), 0.4, 0.85, 0.1, sd_pos=2.0),
        Cell("unequal variances σ1 .5, 2×100, AUC ≈ .99", (100, 100), 0.3, 0.9, fpr_low=0.05, sd_pos=0.5),
    ]
    if quick:
        return q
    full = list(q)
    for g in (2, 4, 8):
        for n in (20, 40, 200, 2000):
            for prev in (0.05, 0.2, 0.5):
                for top, gap in ((0.8, 0.0), (0.97, 0.0), (0.85, 0.2), (0.6, 0.05)):
                    if n * g > 8000 and prev != 0.2:
                        continue
                    full.append(Cell(f"{g}×{n}, prev {prev}, TPR {top}, gap {gap}", (n,) * g, prev, top, gap,
                                     fpr_low=0.02 if top == 0.97 else 0.2))
    for k, rho in ((2, 0.3), (3, 0.8), (5, 0.5)):
        for sizes in ((60, 60), (200, 200, 200, 200), (400, 60, 40, 35)):
            full.append(Cell(f"{k} rows/patient ρ {rho}, {'/'.join(map(str, sizes))}", sizes, 0.4, 0.8, 0.1,
                             rows_per_patient=k, icc=rho))
    return full


# ---------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="16 cells, fewer replicates (< 60 s)")
    ap.add_argument("--reps", type=int, default=None, help="replicates per cell (default 1000 quick, 2000 full)")
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--no-compare", action="store_true", help="skip the candidate methods (full run)")
    ap.add_argument("--baseline-reps", type=int, default=None, help="replicates of the old bootstrap (slow)")
    ap.add_argument("--markdown", default=None, help="also write the per-cell table (Markdown) to this file")
    args = ap.parse_args()
    reps = args.reps or (1000 if args.quick else 2000)
    compare = not args.no_compare and not args.quick
    base_reps = args.baseline_reps if args.baseline_reps is not None else (200 if args.quick else 400)
    rng = np.random.default_rng(args.seed)
    start = time.time()
    cells = grid(args.quick)
    chosen: dict[tuple[str, str], Tally] = {}
    others: dict[tuple[str, str], Tally] = {}
    print(f"{len(cells)} cells × {reps} replicates, alpha {ALPHA}, ≥ {MIN_EVENTS} events to judge a group")
    for cell in cells:
        keep = base_reps if (cell.baseline or compare) else 0
        s = simulate(cell, reps, rng, keep_rows=keep)
        tallies: dict[str, Tally] = {}
        evaluate(cell, s, tallies)
        for kind, t in tallies.items():
            chosen[(cell.name, kind)] = t
        extra: dict[str, Tally] = {}
        if compare:
            evaluate(cell, s, extra, wilson_estimates, prefix="[Wilson/MOVER] ")
        if keep:
            bootstrap_baseline(cell, s, extra, n_boot=500, seed=int(rng.integers(1 << 30)))
        for kind, t in extra.items():
            others[(cell.name, kind)] = t
    _report(chosen, others, compare)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write("\n".join(_markdown(chosen)) + "\n")
    if compare:
        print("\nExact coverage of 95% intervals for a binomial proportion, p over [0.001, 0.999]:")
        print("\n".join(exact_binomial_table()))
    print(f"\n(run time {time.time() - start:.0f} s)")
    _final(chosen)


def _kind(name: str) -> str:
    return "gap" if "gap" in name else "ratio" if "ratio" in name else "value"


def _report(chosen: dict[tuple[str, str], Tally], others: dict[tuple[str, str], Tally], compare: bool) -> None:
    print("\nPer cell (chosen methods): coverage [false FAIL, false PASS]")
    cells = list(dict.fromkeys(c for c, _ in chosen))
    kinds = list(dict.fromkeys(k for _, k in chosen))
    for cell in cells:
        parts = []
        for kind in kinds:
            t = chosen.get((cell, kind))
            if t is None or t.n == 0:
                continue
            parts.append(f"{kind} {t.covered / t.n:.3f} [{t.false_fail(_kind(kind)) / t.n:.3f}, "
                         f"{t.false_pass / max(t.n_pass, 1):.3f}]")
        print(f"  {cell}: " + "; ".join(parts))
    print(f"\nSummary by interval type (over cells with >= {MIN_N} judged intervals): | type | coverage min (cell) "
          "| coverage mean | mean width | false FAIL max | false PASS max |")
    for source, label in ((chosen, "chosen"), (others, "compared")):
        rows = _summary(source)
        if rows:
            print(f"-- {label}")
            print("\n".join(rows))


COLUMNS = {
    "TPR group": ["TPR per group"], "TPR gap": ["TPR max−min gap"], "TPR ratio": ["TPR min/max ratio"],
    "FPR group": ["FPR per group"], "FPR gap": ["FPR max−min gap"], "FPR ratio": ["FPR min/max ratio"],
    "AUC group": ["AUC per group"], "AUC gap": ["AUC max−min gap"],
    "worst group": ["TPR worst group", "FPR worst group", "AUC worst group"],
    "to overall": ["TPR gap to overall", "TPR ratio to overall", "FPR gap to overall", "FPR ratio to overall"],
}


def _markdown(chosen: dict[tuple[str, str], Tally]) -> list[str]:
    """Per-cell coverage (the lowest of a column's types) and the cell's largest false-FAIL rate."""
    lines = ["| cell | " + " | ".join(COLUMNS) + " | false FAIL max |", "|---" * (len(COLUMNS) + 2) + "|"]
    for cell in dict.fromkeys(c for c, _ in chosen):
        row, ff = [], 0.0
        for kinds in COLUMNS.values():
            ts = [(k, chosen[(cell, k)]) for k in kinds if (cell, k) in chosen and chosen[(cell, k)].n]
            if not ts:
                row.append("–")
                continue
            _, t = min(ts, key=lambda x: x[1].covered / x[1].n)
            row.append(f"{t.covered / t.n:.3f}" + ("" if t.n >= MIN_N else f"* ({t.n})"))
            ff = max([ff] + [x.false_fail(_kind(kk)) / x.n for kk, x in ts if x.n >= MIN_N])
        lines.append(f"| {cell} | " + " | ".join(row) + f" | {ff:.3f} |")
    lines.append(f"\n\\* fewer than {MIN_N} judged intervals in this cell (number in brackets): not in the minimum.")
    return lines


def _summary(source: dict[tuple[str, str], Tally]) -> list[str]:
    out = []
    for kind in dict.fromkeys(k for _, k in source):
        ts = [(c, t) for (c, k), t in source.items() if k == kind and t.n >= MIN_N]
        if not ts:
            continue
        cov = [(t.covered / t.n, c, t) for c, t in ts]
        worst = min(cov, key=lambda x: x[0])
        mean_cov = sum(t.covered for _, t in ts) / sum(t.n for _, t in ts)
        width = sum(t.width for _, t in ts) / sum(t.n for _, t in ts)
        ff = max(t.false_fail(_kind(kind)) / t.n for _, t in ts)
        fp = max((t.false_pass / t.n_pass for _, t in ts if t.n_pass), default=float("nan"))
        out.append(f"| {kind} | {worst[0]:.3f} ± {_se(worst[2].covered, worst[2].n):.3f} ({worst[1]}) | "
                   f"{mean_cov:.3f} | {width:.3f} | {ff:.3f} | {fp:.3f} |")
    return out


def _final(chosen: dict[tuple[str, str], Tally]) -> None:
    rare = [(c, k, t) for (c, k), t in chosen.items() if 0 < t.n < MIN_N]
    if rare:
        pooled = Tally(n=sum(t.n for *_, t in rare), covered=sum(t.covered for *_, t in rare))
        worst = min(rare, key=lambda x: x[2].covered / x[2].n)
        print(f"{len(rare)} cell × type estimates rest on fewer than {MIN_N} judged intervals (groups rarely large "
              f"enough); pooled coverage {pooled.covered / pooled.n:.3f} ± {_se(pooled.covered, pooled.n):.3f} "
              f"(n = {pooled.n}); lowest {worst[2].covered / worst[2].n:.3f} ± {_se(worst[2].covered, worst[2].n):.3f} "
              f"({worst[1]} in '{worst[0]}', n = {worst[2].n}); not counted below")
    counted = {key: t for key, t in chosen.items() if t.n >= MIN_N}
    cov = min(((t.covered / t.n, t, c, k) for (c, k), t in counted.items()), key=lambda x: x[0])
    ff = max(((t.false_fail(_kind(k)) / t.n, t, c, k) for (c, k), t in counted.items()), key=lambda x: x[0])
    print(f"coverage min: {cov[0]:.3f} (± {_se(cov[1].covered, cov[1].n):.3f} Monte-Carlo s.e., n = {cov[1].n}; "
          f"{cov[3]} in '{cov[2]}')")
    k = ff[1].false_fail(_kind(ff[3]))
    print(f"false-FAIL rate max: {ff[0]:.3f} (± {_se(k, ff[1].n):.3f} Monte-Carlo s.e., n = {ff[1].n}; "
          f"{ff[3]} in '{ff[2]}')")


if __name__ == "__main__":
    main()
