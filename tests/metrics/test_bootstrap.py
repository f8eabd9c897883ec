"""Bootstrap CIs: agreement with fairlearn, coverage, patient clusters, AUC without re-sorting."""

from __future__ import annotations

import numpy as np
import pytest
from _metrics_data import binary_case
from scipy.stats import norm

from fairaudit.stats import (
    bootstrap_auc,
    bootstrap_confusion_counts,
    bootstrap_group_metrics,
    bootstrap_score_metrics,
    encode_groups,
    percentile_ci,
    sort_scores,
    weighted_auc,
)
from fairaudit.stats import confusion as cm


def _mc_tolerance(samples: np.ndarray, q: float, b_ref: int, z: float = 4.5) -> float:
    """z standard errors of a bootstrap quantile estimated from ``b_ref`` resamples."""
    sd = np.nanstd(samples)
    return z * np.sqrt(q * (1 - q) / b_ref) / norm.pdf(norm.ppf(q)) * sd


def test_ci_agrees_with_fairlearn_bootstrap() -> None:
    """fairlearn resamples rows over the whole data; ``stratified=False`` is the same scheme."""
    from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate

    y, _, pred, g = binary_case(seed=11, n=300, tpr=(0.8, 0.65, 0.5))
    b_fl = 100
    mf = MetricFrame(
        metrics={"tpr": true_positive_rate, "sel": selection_rate},
        y_true=y,
        y_pred=pred,
        sensitive_features=g,
        n_boot=b_fl,
        ci_quantiles=[0.025, 0.975],
        random_state=0,
    )
    ours = bootstrap_group_metrics(
        y,
        pred,
        g,
        n_boot=20000,
        stratified=False,
        seed=1,
        metrics=["true_positive_rate", "selection_rate"],
        zero_division=0.0,
    )
    for ours_name, fl_name in (("true_positive_rate", "tpr"), ("selection_rate", "sel")):
        est = ours.by_group[ours_name]
        for k, q in enumerate((0.025, 0.975)):
            bound = est.ci_low if k == 0 else est.ci_high
            fl = mf.by_group_ci[k][fl_name].to_numpy()
            for i in range(len(ours.groups)):
                tol = _mc_tolerance(est.samples[:, i], q, b_fl)
                assert abs(bound[i] - fl[i]) <= tol, (
                    ours_name,
                    ours.groups[i],
                    q,
                    bound[i],
                    fl[i],
                    tol,
                )
        diff = ours.difference[ours_name]
        for k, q in enumerate((0.025, 0.975)):
            bound = diff.ci_low if k == 0 else diff.ci_high
            fl = mf.difference_ci()[k][fl_name]
            assert abs(bound - fl) <= _mc_tolerance(diff.samples, q, b_fl), (
                ours_name,
                q,
                bound,
                fl,
            )
    # the stratified (default) scheme gives nearly the same intervals for per-group rates
    strat = bootstrap_group_metrics(
        y, pred, g, n_boot=20000, seed=1, metrics=["true_positive_rate"]
    )
    width = ours.by_group["true_positive_rate"].ci_high - ours.by_group["true_positive_rate"].ci_low
    swidth = (
        strat.by_group["true_positive_rate"].ci_high - strat.by_group["true_positive_rate"].ci_low
    )
    assert np.allclose(swidth, width, rtol=0.1)


def test_counts_bootstrap_matches_row_resampling_distribution() -> None:
    """Per-cell multinomial draws have the distribution of resampling rows within each group."""
    y, _, pred, g = binary_case(seed=2, n=240)
    boot, enc = bootstrap_confusion_counts(y, pred, g, n_boot=4000, seed=3)
    rng = np.random.default_rng(4)
    cells = 2 * y + pred
    naive = np.zeros((4000, enc.n_groups, 4))
    for gi in range(enc.n_groups):
        rows = np.flatnonzero(enc.codes == gi)
        draws = rows[rng.integers(0, len(rows), size=(4000, len(rows)))]
        for c in range(4):
            naive[:, gi, c] = (cells[draws] == c).sum(1)
    assert np.array_equal(
        boot.replicates.sum(2), np.broadcast_to(enc.sizes(), (4000, enc.n_groups))
    )
    ours_tpr = cm.rate(boot.replicates, "true_positive_rate")
    naive_tpr = cm.rate(naive, "true_positive_rate")
    assert np.allclose(ours_tpr.mean(0), naive_tpr.mean(0), atol=0.006)
    assert np.allclose(ours_tpr.std(0), naive_tpr.std(0), rtol=0.08)


@pytest.mark.parametrize("stratified", [True, False])
def test_coverage_on_simulated_data(stratified: bool) -> None:
    """95% intervals cover the true TPR and TPR gap about 95% of the time."""
    truth_tpr = np.array([0.8, 0.6])
    cover_rate, cover_gap, n_sim = 0, 0, 200
    for sim in range(n_sim):
        y, _, pred, g = binary_case(
            seed=1000 + sim,
            n=500,
            groups=("A", "B"),
            tpr=tuple(truth_tpr),
            fpr=(0.2, 0.3),
            prevalence=0.5,
        )
        est = bootstrap_group_metrics(
            y, pred, g, n_boot=400, seed=sim, stratified=stratified, metrics=["true_positive_rate"]
        )
        t = est.by_group["true_positive_rate"]
        cover_rate += int(t.ci_low[0] <= truth_tpr[0] <= t.ci_high[0])
        d = est.difference["true_positive_rate"]
        cover_gap += int(d.ci_low <= 0.2 <= d.ci_high)
    assert 0.89 <= cover_rate / n_sim <= 0.99
    assert 0.88 <= cover_gap / n_sim <= 0.99


def test_patient_clusters_resample_whole_patients() -> None:
    y, _, pred, g = binary_case(seed=6, n=300)
    single = bootstrap_group_metrics(y, pred, g, n_boot=500, seed=9, metrics=["true_positive_rate"])
    # every patient contributes two identical rows: rates and their bootstrap law are unchanged
    doubled = bootstrap_group_metrics(
        np.repeat(y, 2),
        np.repeat(pred, 2),
        np.repeat(g, 2),
        patient_ids=np.repeat(np.arange(300), 2),
        n_boot=500,
        seed=9,
        metrics=["true_positive_rate"],
    )
    a, b = single.by_group["true_positive_rate"], doubled.by_group["true_positive_rate"]
    assert np.array_equal(a.value, b.value)
    assert np.allclose(a.samples, b.samples)
    # treating the duplicated rows as independent patients understates the uncertainty
    naive = bootstrap_group_metrics(
        np.repeat(y, 2),
        np.repeat(pred, 2),
        np.repeat(g, 2),
        n_boot=500,
        seed=9,
        metrics=["true_positive_rate"],
    )
    w_naive = (
        naive.by_group["true_positive_rate"].ci_high - naive.by_group["true_positive_rate"].ci_low
    )
    w_patient = b.ci_high - b.ci_low
    assert np.all(w_naive < 0.85 * w_patient)


def test_patient_clusters_with_mixed_rows() -> None:
    """Patients with several, different rows: resample sizes are whole patients per group."""
    rng = np.random.default_rng(7)
    n_pat = 150
    per = rng.integers(1, 4, n_pat)
    pid = np.repeat(np.arange(n_pat), per)
    grp = np.repeat(rng.choice(np.array(["F", "M"], dtype=object), n_pat), per)
    y = rng.integers(0, 2, len(pid))
    pred = rng.integers(0, 2, len(pid))
    boot, enc = bootstrap_confusion_counts(y, pred, grp, patient_ids=pid, n_boot=300, seed=1)
    rows_per_group = boot.replicates.sum(2)
    # a resample draws as many patients per group as there are: row totals vary
    assert rows_per_group.std(0).min() > 0
    assert np.allclose(rows_per_group.mean(0), enc.sizes(), rtol=0.05)


def test_weighted_auc_equals_sklearn_with_weights() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    w = rng.integers(0, 4, 300).astype(float)
    ss = sort_scores(y, s)
    assert weighted_auc(ss)[0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert weighted_auc(ss, w[ss.layout])[0] == pytest.approx(
        roc_auc_score(y, s, sample_weight=w), abs=1e-12
    )


def test_auc_bootstrap_without_resorting_matches_naive_resampling() -> None:
    """Same law as re-sorting every resample (naive: rank each resampled group anew)."""
    from scipy.stats import rankdata
    from sklearn.metrics import roc_auc_score

    y, score, _, g = binary_case(seed=8, n=400)
    score = np.round(score + 0.2 * y * np.random.default_rng(0).random(400), 2)
    res = bootstrap_auc(y, score, g, n_boot=3000, seed=2)
    enc = encode_groups(g)
    rng = np.random.default_rng(5)
    for gi, name in enumerate(enc.names):
        rows = np.flatnonzero(enc.codes == gi)
        r = rows[rng.integers(0, len(rows), size=(3000, len(rows)))]
        yr, ranks = y[r], rankdata(score[r], axis=1)  # midranks, re-sorted per resample
        n1 = yr.sum(1)
        n0 = yr.shape[1] - n1
        naive = ((ranks * yr).sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0)
        lo, hi = np.quantile(naive, [0.025, 0.975])
        ours = res["by_group"][name]
        assert ours.value == pytest.approx(roc_auc_score(y[rows], score[rows]), abs=1e-12)
        tol = 0.25 * naive.std()
        assert abs(ours.ci_low - lo) < tol and abs(ours.ci_high - hi) < tol


def test_score_bootstrap_patient_clusters_and_all_metrics() -> None:
    y, score, _, g = binary_case(seed=9, n=300)
    metrics = ("roc_auc", "average_precision", "brier_score", "expected_calibration_error")
    a = bootstrap_score_metrics(y, score, g, metrics=metrics, n_boot=300, seed=4)
    b = bootstrap_score_metrics(
        np.repeat(y, 3),
        np.repeat(score, 3),
        np.repeat(g, 3),
        metrics=metrics,
        patient_ids=np.repeat(np.arange(300), 3),
        n_boot=300,
        seed=4,
    )
    for m in metrics:
        assert np.allclose(a.point[m], b.point[m])
        wa = np.diff(np.array(percentile_ci(a.samples[m])), axis=0)
        wb = np.diff(np.array(percentile_ci(b.samples[m])), axis=0)
        assert np.allclose(wa, wb, rtol=0.35)  # same law (different draws)
        assert np.all(np.isfinite(a.samples[m]))


def test_percentile_ci_skips_undefined_resamples() -> None:
    s = np.array([[np.nan, 1.0], [np.nan, 2.0], [np.nan, 3.0]])
    low, high = percentile_ci(s, 0.5)
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert low[1] == 1.5 and high[1] == 2.5


@pytest.mark.slow
def test_ci_agrees_with_fairlearn_bootstrap_1000_resamples() -> None:
    """Tighter check with fairlearn's default-sized bootstrap (about a minute)."""
    from fairlearn.metrics import MetricFrame, false_positive_rate

    y, _, pred, g = binary_case(seed=12, n=400)
    mf = MetricFrame(
        metrics=false_positive_rate,
        y_true=y,
        y_pred=pred,
        sensitive_features=g,
        n_boot=1000,
        ci_quantiles=[0.025, 0.975],
        random_state=0,
    )
    ours = bootstrap_group_metrics(
        y,
        pred,
        g,
        n_boot=50000,
        stratified=False,
        seed=1,
        metrics=["false_positive_rate"],
        zero_division=0.0,
    )
    est = ours.by_group["false_positive_rate"]
    for k, q in enumerate((0.025, 0.975)):
        bound = est.ci_low if k == 0 else est.ci_high
        fl = mf.by_group_ci[k].to_numpy()
        for i in range(len(ours.groups)):
            assert abs(bound[i] - fl[i]) <= _mc_tolerance(est.samples[:, i], q, 1000, z=4.0)


def test_grouped_auc_equals_old_formula_and_sklearn_on_explicit_resamples() -> None:
    """Integer-count AUCs (every group and overall at once) equal, resample by resample, the
    float weighted formula bit for bit and scikit-learn with the counts as sample weights."""
    from sklearn.metrics import roc_auc_score

    from fairaudit.stats.grouped_auc import GroupedAUC
    from fairaudit.stats.resample import StratumCounts

    y, score, _, g = binary_case(seed=21, n=700)
    score = np.round(score, 2)  # ties within and across classes
    enc = encode_groups(g)
    ranked = GroupedAUC(y, score, enc.codes, enc.n_groups)
    counts = StratumCounts(ranked.group_sizes).draw(40, np.random.default_rng(3))
    per_group, overall = ranked.auc(counts)
    rows_w = np.zeros((40, len(y)))
    rows_w[:, ranked.layout] = counts  # each row's multiplicity in each resample
    for gi in range(enc.n_groups):
        rows = np.flatnonzero(enc.codes == gi)
        ss = sort_scores(y[rows], score[rows])
        assert np.array_equal(weighted_auc(ss, rows_w[:, rows][:, ss.layout]), per_group[:, gi])
    ss = sort_scores(y, score)
    assert np.array_equal(weighted_auc(ss, rows_w[:, ss.layout]), overall)
    for r in range(0, 40, 7):
        assert overall[r] == pytest.approx(roc_auc_score(y, score, sample_weight=rows_w[r]), abs=1e-12)
        for gi in range(enc.n_groups):
            rows = np.flatnonzero(enc.codes == gi)
            expected = roc_auc_score(y[rows], score[rows], sample_weight=rows_w[r, rows])
            assert per_group[r, gi] == pytest.approx(expected, abs=1e-12)


def test_grouped_auc_overall_paths_agree_and_missing_classes_give_nan() -> None:
    from fairaudit.stats.grouped_auc import GroupedAUC

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    s = rng.random(400) + 0.5 * y
    codes = rng.integers(0, 9, 400)
    codes[codes == 8] = 7  # group 8 stays empty
    y[codes == 7] = 1  # group 7 has no negatives
    ranked = GroupedAUC(y, s, codes, 9)
    w = rng.integers(0, 3, (6, 400)).astype(np.int32)
    cross_g, cross_all = ranked.auc(w)
    ranked._cross = None  # the overall AUC from a second cumulative sum in score order
    perm_g, perm_all = ranked.auc(w)
    assert np.array_equal(cross_all, perm_all) and np.array_equal(cross_g, perm_g, equal_nan=True)
    assert np.isnan(cross_g[:, 7]).all() and np.isnan(cross_g[:, 8]).all()
    with pytest.raises(TypeError, match="integers"):
        ranked.auc(w.astype(float))


@pytest.mark.parametrize("margin", [0.5, -1.0])
def test_stratum_counts_have_the_multinomial_law(monkeypatch: pytest.MonkeyPatch, margin: float) -> None:
    """Completed Poisson counts are exactly Multinomial(m, 1/m): chi-square over every outcome
    of 3 balls in 3 cells, with balls added (margin > 0) or mostly removed (margin < 0)."""
    from itertools import product
    from math import factorial

    from scipy.stats import chisquare

    from fairaudit.stats import resample

    monkeypatch.setattr(resample, "MIN_POISSON_CELLS", 1)
    sampler = resample.StratumCounts(np.array([3, 5]), margin=margin)
    draws = sampler.draw(60_000, np.random.default_rng(11)).astype(np.int64)
    assert np.array_equal(draws[:, :3].sum(1), np.full(60_000, 3))
    assert np.array_equal(draws[:, 3:].sum(1), np.full(60_000, 5))
    outcomes = [c for c in product(range(4), repeat=3) if sum(c) == 3]
    expected = np.array([factorial(3) / np.prod([factorial(k) for k in c]) / 27 for c in outcomes])
    index = {c: i for i, c in enumerate(outcomes)}
    observed = np.bincount([index[tuple(row)] for row in draws[:, :3]], minlength=len(outcomes))
    assert chisquare(observed, expected * len(draws)).pvalue > 1e-4


def test_score_bootstrap_stratified_by_group_keeps_group_sizes() -> None:
    """The layout counts resample each group's rows within the group (sizes fixed), and an
    unstratified bootstrap lets them vary."""
    y, score, _, g = binary_case(seed=3, n=500)
    enc = encode_groups(g)
    from fairaudit.stats.bootstrap import _layout_counts, prepare
    from fairaudit.stats.grouped_auc import GroupedAUC

    for stratified in (True, False):
        prep = prepare(enc, len(y), None, stratified)
        ranked = GroupedAUC(y, score, prep.codes, enc.n_groups)
        counts = np.concatenate([w for _, w in _layout_counts(prep, ranked, 200, np.random.default_rng(0))])
        sizes = np.add.reduceat(counts.astype(np.int64), ranked.group_starts, axis=1)
        assert np.all(sizes.sum(1) == len(y))
        assert np.all(sizes == ranked.group_sizes) == stratified
