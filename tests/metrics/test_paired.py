"""Paired bootstrap of the change from the baseline: point values, coverage of the pairing,
patient clusters, and agreement with a brute-force resampling reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _metrics_data import binary_case, context

from fairaudit.builtin.metrics.group_metrics import GroupMetrics
from fairaudit.stats.paired import paired_changes


def _fixed_for_group(y, score, g, group: str, rate: float, seed: int = 5) -> np.ndarray:
    """The same scores, except that a share ``rate`` of ``group``'s missed positives are caught."""
    rng = np.random.default_rng(seed)
    out = score.copy()
    missed = np.flatnonzero((g == group) & (y == 1) & (score < 0.5))
    caught = missed[rng.random(len(missed)) < rate]
    out[caught] = 0.5 + 0.4 * rng.random(len(caught))
    return out


@pytest.fixture(scope="module")
def two_arms():
    y, score, _, g = binary_case(seed=3, n=1200, groups=("A", "B"), tpr=(0.85, 0.6), fpr=(0.2, 0.2))
    fixed = _fixed_for_group(y, score, g, "B", 0.5)
    return y, g, {"baseline": score, "mitigated": fixed}


def test_point_changes_equal_the_differences_of_group_metrics(two_arms) -> None:
    y, g, scores = two_arms
    sens = pd.DataFrame({"site": g})
    ctx_kw = {"attributes": ["site"], "n_boot": 0, "n_permutations": 0}
    results = {
        name: {r.metric: r.value for r in GroupMetrics().compute(context(y, s, sens, **ctx_kw))}
        for name, s in scores.items()
    }
    changes = paired_changes(y, scores, sens, ["site"], n_boot=0, min_group_size=10, min_group_positives=5)
    got = {c.metric: c for c in changes["mitigated"]}
    assert set(got) == {"roc_auc", "worst_group_auc", "equal_opportunity_difference"}
    for metric, change in got.items():
        expected = results["mitigated"][metric] - results["baseline"][metric]
        assert change.value == pytest.approx(expected, abs=1e-12), metric
        assert np.isnan(change.ci_low) and np.isnan(change.ci_high)  # n_boot = 0: no interval
    assert got["equal_opportunity_difference"].attribute == "site"
    assert got["equal_opportunity_difference"].groups == ["A", "B"]


def test_pairing_detects_a_change_that_unpaired_intervals_miss(two_arms) -> None:
    """Catching 15 % of group B's missed positives narrows the TPR gap by about 0.05: the
    arm's own interval still holds the baseline's EOD (so comparing intervals would call it
    noise), but the paired interval of the change excludes zero and is far narrower."""
    y, g, scores = two_arms
    sens = pd.DataFrame({"site": g})
    small_fix = _fixed_for_group(y, scores["baseline"], g, "B", 0.15)
    arms = {"baseline": scores["baseline"], "mitigated": small_fix}
    changes = paired_changes(y, arms, sens, ["site"], n_boot=400, seed=0, min_group_size=10, min_group_positives=5)
    eod = next(c for c in changes["mitigated"] if c.metric == "equal_opportunity_difference")
    assert -0.08 < eod.value < -0.02
    assert eod.excludes_zero and eod.ci_high < 0
    own = {
        name: next(
            r
            for r in GroupMetrics().compute(context(y, s, sens, attributes=["site"], n_boot=400, n_permutations=0))
            if r.metric == "equal_opportunity_difference"
        )
        for name, s in arms.items()
    }
    assert own["mitigated"].ci_low <= own["baseline"].value <= own["mitigated"].ci_high
    paired_width = eod.ci_high - eod.ci_low
    for r in own.values():
        assert paired_width < 0.6 * (r.ci_high - r.ci_low)
    # an arm identical to the baseline changes nothing, with a zero-width interval
    same = paired_changes(y, {"baseline": scores["baseline"], "copy": scores["baseline"].copy()}, sens, ["site"],
                          n_boot=100, min_group_size=10, min_group_positives=5)
    for c in same["copy"]:
        assert c.value == 0.0 and c.ci_low == 0.0 and c.ci_high == 0.0 and not c.excludes_zero


def _brute_force_eod_change(y, groups, patients, base, arm, n_boot, seed) -> np.ndarray:
    """Resample patients (stratified by group) with explicit row lists; EOD of both arms."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(patients)
    patient_group = {p: groups[patients == p][0] for p in uniq}
    rows_of = {p: np.flatnonzero(patients == p) for p in uniq}
    strata = {gr: [p for p in uniq if patient_group[p] == gr] for gr in np.unique(groups)}

    def eod(s, rows):
        yy, gg, pred = y[rows], groups[rows], s[rows] >= 0.5
        tprs = [pred[(gg == gr) & (yy == 1)].mean() for gr in np.unique(groups)]
        return max(tprs) - min(tprs)

    out = []
    for _ in range(n_boot):
        picked = [p for members in strata.values() for p in rng.choice(members, len(members))]
        rows = np.concatenate([rows_of[p] for p in picked])
        out.append(eod(arm, rows) - eod(base, rows))
    return np.asarray(out)


def test_patient_clusters_match_a_brute_force_resampling() -> None:
    """Two to four images per patient (same group): the paired interval matches explicit
    patient resampling within Monte-Carlo error."""
    rng = np.random.default_rng(11)
    sizes = rng.integers(2, 5, 260)
    patients = np.repeat(np.arange(len(sizes)), sizes)
    group_of_patient = rng.choice(np.array(["F", "M"], dtype=object), len(sizes))
    g = group_of_patient[patients]
    n = len(patients)
    y = (rng.random(n) < 0.45).astype(int)
    frailty = rng.normal(0, 0.15, len(sizes))[patients]  # correlated scores within a patient
    base = np.clip(0.35 + 0.3 * y - 0.12 * (g == "F") + frailty + rng.normal(0, 0.12, n), 0, 1)
    arm = _fixed_for_group(y, base, g, "F", 0.4)
    sens = pd.DataFrame({"sex": g})
    got = paired_changes(y, {"baseline": base, "arm": arm}, sens, ["sex"], patient_ids=patients, n_boot=2000,
                         seed=1, min_group_size=10, min_group_positives=5)
    eod = next(c for c in got["arm"] if c.metric == "equal_opportunity_difference")
    ref = _brute_force_eod_change(y, g, patients, base, arm, 600, seed=2)
    lo, hi = np.quantile(ref, [0.025, 0.975])
    assert eod.value == pytest.approx(float(np.mean(ref)), abs=0.02)
    assert eod.ci_low == pytest.approx(lo, abs=0.025)
    assert eod.ci_high == pytest.approx(hi, abs=0.025)


def test_small_groups_are_left_out_and_errors_are_clear(two_arms) -> None:
    y, g, scores = two_arms
    g2 = g.copy()
    g2[:8] = "tiny"
    sens = pd.DataFrame({"site": g2})
    got = paired_changes(y, scores, sens, ["site"], n_boot=50, min_group_size=10, min_group_positives=5)
    eod = next(c for c in got["mitigated"] if c.metric == "equal_opportunity_difference")
    assert eod.groups == ["A", "B"]
    with pytest.raises(ValueError, match="reference arm 'baseline' has no scores"):
        paired_changes(y, {"other": scores["mitigated"]}, sens, ["site"])
    with pytest.raises(ValueError, match="arm 'short': 3 scores"):
        paired_changes(y, {"baseline": scores["baseline"], "short": np.zeros(3)}, sens, ["site"])
