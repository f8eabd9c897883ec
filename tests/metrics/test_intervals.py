"""Intervals of fairaudit.stats.intervals: exact references, coverage with known truth, engine wiring."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _metrics_data import context
from scipy import special, stats

from fairaudit.builtin.metrics.group_metrics import GroupMetrics
from fairaudit.stats import intervals as ci
from fairaudit.stats.special import beta_ppf, betainc, t_quantile, z_quantile


def _bench():
    """The coverage benchmark's simulator (one score model for the benchmark and the tests)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_coverage.py"
    spec = importlib.util.spec_from_file_location("bench_coverage", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_coverage"] = mod
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


# ---------------------------------------------------------------- special functions
def test_quantiles_equal_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b, x = rng.uniform(0.2, 3000, 500), rng.uniform(0.2, 3000, 500), rng.random(500)
    assert np.allclose(betainc(a, b, x), special.betainc(a, b, x), atol=1e-11)
    q = rng.random(500)
    assert np.allclose(beta_ppf(q, a, b), special.betaincinv(a, b, q), atol=1e-10, rtol=1e-9)
    for p in (1e-9, 0.003, 0.025, 0.5, 0.975):
        assert z_quantile(p) == pytest.approx(stats.norm.ppf(p), abs=1e-12)
    df = np.array([1.0, 3.0, 12.0, 199.0, 200.0, 201.0, 5000.0, 12.0, 1e6])
    for p in (1e-5, 0.0005, 0.025, 0.2):
        assert np.allclose(t_quantile(p, df), stats.t.isf(p, df), atol=0, rtol=1e-9)


def test_clopper_pearson_equals_scipy_and_behaves_at_0_and_1() -> None:
    n = np.array([31, 31, 31, 10, 400])
    x = np.array([31, 30, 0, 5, 123])
    lo, hi = ci.clopper_pearson(x, n, 0.95)
    ref = stats.binomtest(30, 31).proportion_ci(0.95, method="exact")
    assert (lo[1], hi[1]) == pytest.approx((ref.low, ref.high), abs=1e-10)
    assert hi[0] == 1.0 and lo[0] == pytest.approx(0.025 ** (1 / 31))  # 31/31: never [1, 1]
    assert lo[2] == 0.0 and hi[2] == pytest.approx(1 - 0.025 ** (1 / 31))
    assert np.isnan(ci.clopper_pearson(np.array([0]), np.array([0]), 0.95)[0]).all()


def test_clopper_pearson_exact_coverage_never_below_nominal() -> None:
    """Exact binomial coverage (no Monte-Carlo error) over a grid of p, including near 0 and 1."""
    ps = np.concatenate([np.linspace(0.001, 0.05, 50), np.linspace(0.05, 0.95, 91), np.linspace(0.95, 0.999, 50)])
    for n in (5, 12, 31, 80):
        x = np.arange(n + 1)
        lo, hi = ci.clopper_pearson(x, np.full(n + 1, n), 0.95)
        pmf = stats.binom.pmf(x[None, :], n, ps[:, None])
        cov = (pmf * ((lo <= ps[:, None]) & (ps[:, None] <= hi))).sum(1)
        assert cov.min() >= 0.95 - 1e-9, n
        wl, wh = ci.wilson(x, np.full(n + 1, n), 0.95)  # the alternative it was chosen over
        assert ((pmf * ((wl <= ps[:, None]) & (ps[:, None] <= wh))).sum(1)).min() < 0.93


# ---------------------------------------------------------------- clusters
def test_effective_size_from_patient_clusters() -> None:
    rng = np.random.default_rng(1)
    cells = rng.integers(0, 4, 300)
    codes = rng.integers(0, 2, 300)
    single = ci.ClusterStats.from_rows(codes, cells, None, 2)
    x = np.array([(cells[codes == g] == 3).sum() for g in range(2)], dtype=float)
    n = np.array([(cells[codes == g] >= 2).sum() for g in range(2)], dtype=float)
    n_eff, df = ci.effective_size(x, n, "true_positive_rate", single)
    assert np.array_equal(n_eff, n) and np.isinf(df).all()
    # every patient twice (identical rows): the design effect is 2 and the interval that of the patients
    twice = ci.ClusterStats.from_rows(np.repeat(codes, 2), np.repeat(cells, 2), np.repeat(np.arange(300), 2), 2)
    n_eff2, df2 = ci.effective_size(2 * x, 2 * n, "true_positive_rate", twice)
    patients = n  # one patient per original row in the denominator
    assert np.allclose(n_eff2, 2 * n / np.maximum(2 * (patients / (patients - 1)), 1.0))
    assert np.array_equal(df2, patients - 1)
    est = ci.rate_estimates(np.stack([[0, 0, 2 * (n[g] - x[g]), 2 * x[g]] for g in range(2)]), "true_positive_rate",
                            twice)
    lo2, hi2 = est.limits(0.95)
    lo1, hi1 = ci.clopper_pearson(x, n, 0.95)
    assert np.all(lo2 <= lo1 + 0.01) and np.all(hi2 >= hi1 - 0.01)  # not narrower than the patients'


# ---------------------------------------------------------------- gaps
def test_gap_interval_contains_zero_gap_and_point() -> None:
    counts = np.array([[30, 10, 4, 16], [25, 15, 5, 15], [30, 10, 3, 17]])  # TPRs 0.8, 0.75, 0.85
    est = ci.rate_estimates(counts, "true_positive_rate")
    g = ci.gap_bounds(est, 0.05)
    assert g.ci_low == 0.0 and g.ci_low <= g.value <= g.ci_high <= 1.0
    r = ci.ratio_bounds(est, 0.05)
    assert r.ci_low <= r.value <= r.ci_high == 1.0
    w = ci.worst_bounds(est, 0.05, higher_is_better=True)
    assert w.ci_low <= w.value == 0.75 <= w.ci_high
    big = np.array([[300, 100, 40, 360], [250, 150, 240, 160]])  # TPRs 0.9 vs 0.4
    gb = ci.gap_bounds(ci.rate_estimates(big, "true_positive_rate"), 0.05)
    assert 0.4 < gb.ci_low < 0.5 < gb.ci_high < 0.6


@pytest.mark.parametrize("names", [["4×40, TPR .8, no gap, prev .5", "2×80, TPR .97 (31 pos.), no gap",
                                    "3 rows/patient, ρ .5, 2×120", "400/60/40/35, prev .4, no gap"]])
def test_coverage_on_a_small_fixed_grid(names: list[str]) -> None:
    """Known truth (benchmarks/bench_coverage.py's score model), 300 replicates per cell.

    With 300 replicates the Monte-Carlo s.e. of a 0.95 coverage is 0.013; the bound 0.93 is
    1.5 s.e. under nominal.  The percentile bootstrap this replaced covers 0.57 (TPR 0.97) and
    0.00 (zero gap) on the same cells.
    """
    bench = _bench()
    cells = {c.name: c for c in bench.grid(quick=True)}
    rng = np.random.default_rng(7)
    for name in names:
        tallies: dict[str, object] = {}
        bench.evaluate(cells[name], bench.simulate(cells[name], 300, rng), tallies)
        for kind, t in tallies.items():
            assert t.covered / t.n >= 0.93, (name, kind, t.covered / t.n)
            assert t.false_fail(bench._kind(kind)) / t.n <= 0.05, (name, kind)


# ---------------------------------------------------------------- the engine uses them
def test_group_metrics_reports_these_intervals() -> None:
    rng = np.random.default_rng(3)
    n = 600
    g = np.array(["A"] * 300 + ["B"] * 200 + ["C"] * 100, dtype=object)
    y = (rng.random(n) < 0.4).astype(int)
    score = np.clip(np.where(y == 1, 0.65, 0.35) + rng.normal(0, 0.2, n), 0, 1)
    res = GroupMetrics(metrics=["true_positive_rate", "roc_auc"], curves=False).compute(
        context(y, score, pd.DataFrame({"g": g}), attributes=["g"], n_boot=50, n_permutations=0)
    )
    by = {r.metric: r for r in res}
    pred = (score >= 0.5).astype(int)
    counts = np.array([[((g == k) & (y == a) & (pred == b)).sum() for a in (0, 1) for b in (0, 1)] for k in "ABC"])
    est = ci.rate_estimates(counts, "true_positive_rate")
    lo, hi = est.limits(0.95)
    for i, gv in enumerate(by["true_positive_rate"].per_group):
        assert (gv.ci_low, gv.ci_high) == pytest.approx((lo[i], hi[i]))
    gap = ci.gap_bounds(est, 0.05)
    eod = by["equal_opportunity_difference"]
    assert (eod.ci_low, eod.ci_high) == pytest.approx((float(gap.ci_low), float(gap.ci_high)))
    auc = ci.auc_estimates(y, score, np.searchsorted(["A", "B", "C"], g), 3)
    alo, ahi = auc.limits(0.95)
    assert [gv.ci_low for gv in by["roc_auc"].per_group] == pytest.approx(list(alo))
    assert [gv.ci_high for gv in by["roc_auc"].per_group] == pytest.approx(list(ahi))
    assert eod.details["excluded"] == [] and eod.details["tested_by"] == "equal_opportunity_difference"
