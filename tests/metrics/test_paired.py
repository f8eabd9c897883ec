"""Paired bootstrap of the change from the baseline: point values, coverage of the pairing,
patient clusters, and agreement with a brute-force resampling reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _metrics_data import binary_case, context
from sklearn.metrics import roc_auc_score

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
    changes = paired_changes(y, scores, sens, ["site"], n_boot=0, min_group_positives=5)
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
    changes = paired_changes(y, arms, sens, ["site"], n_boot=400, seed=0, min_group_positives=5)
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
                          n_boot=100, min_group_positives=5)
    for c in same["copy"]:
        assert c.value == 0.0 and c.ci_low == 0.0 and c.ci_high == 0.0 and not c.excludes_zero


def _reference_metrics(y, scores, labels, rows, judged) -> dict[str, float]:
    """The compared metrics on rows ``rows`` (repeats allowed), with sklearn and plain numpy;
    ``labels``: attribute (set) name -> group label of every row."""
    out = {"roc_auc": roc_auc_score(y[rows], scores[rows])}
    worst = []
    for name, row_labels in labels.items():
        g = row_labels[rows]
        yy, pred = y[rows], scores[rows] >= 0.5
        tprs = [pred[(g == k) & (yy == 1)].mean() for k in judged[name]["tpr"] if ((g == k) & (yy == 1)).any()]
        if len(judged[name]["tpr"]) >= 2:
            out[f"equal_opportunity_difference|{name}"] = max(tprs) - min(tprs)
        if len(judged[name]["auc"]) >= 2:
            worst += [roc_auc_score(yy[g == k], scores[rows][g == k]) for k in judged[name]["auc"]
                      if len(set(yy[g == k])) == 2]
    out["worst_group_auc"] = min(worst)
    return out


def test_every_replicate_matches_an_explicit_patient_resample(monkeypatch) -> None:
    """Capture the resampling weights, rebuild each replicate as an explicit list of rows
    (each drawn patient's images repeated) and recompute every metric with sklearn: the
    changes and interval ends agree to rounding, for two attributes and their intersection,
    with several images per patient.  The weights resample whole patients within sex."""
    import fairaudit.stats.paired as paired

    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 4, 150)
    patients = np.repeat(np.arange(len(sizes)), sizes)
    n = len(patients)
    sex = rng.choice(np.array(["F", "M"], dtype=object), len(sizes))[patients]
    site = rng.choice(np.array(["x", "y", "z"], dtype=object), n)
    y = (rng.random(n) < 0.4).astype(int)
    base = np.clip(0.3 * y + rng.normal(0.35, 0.2, n), 0, 1)
    arm = np.clip(base + rng.normal(0, 0.1, n), 0, 1)
    sens = pd.DataFrame({"sex": sex, "site": site})
    captured = []
    real = paired.weight_chunks

    def spy(design, n_boot, rng_, n_rows=None):
        for w in real(design, n_boot, rng_, n_rows=n_rows):
            captured.append((w.copy(), design))
            yield w

    monkeypatch.setattr(paired, "weight_chunks", spy)
    sets = [["sex"], ["site"], ["sex", "site"]]
    got = paired_changes(y, {"baseline": base, "arm": arm}, sens, ["sex", "site", ["sex", "site"]],
                         patient_ids=patients, n_boot=80, seed=1, min_group_positives=4)
    weights = np.concatenate([w for w, _ in captured])
    design = captured[0][1]
    assert weights.shape == (80, len(sizes))
    for stratum in np.unique(design.patient_stratum):  # whole patients, resampled within sex
        members = design.patient_stratum == stratum
        assert np.all(weights[:, members].sum(axis=1) == members.sum())
    judged = {}
    labels = {"&".join(cols): sens[cols].astype(str).agg("&".join, axis=1).to_numpy() for cols in sets}
    for name, g in labels.items():  # judged on events alone, as group_metrics does
        ok = list(np.unique(g))
        judged[name] = {
            "tpr": [k for k in ok if ((g == k) & (y == 1)).sum() >= 4],
            "auc": [k for k in ok if min(((g == k) & (y == 1)).sum(), ((g == k) & (y == 0)).sum()) >= 4],
        }
    everything = np.arange(n)
    point = {a: _reference_metrics(y, s, labels, everything, judged) for a, s in (("b", base), ("a", arm))}
    draws: dict[str, list[float]] = {}
    for w in weights:
        rows = np.repeat(everything, w[design.row_patient])
        ref, new = (_reference_metrics(y, s, labels, rows, judged) for s in (base, arm))
        for key in ref:
            draws.setdefault(key, []).append(new[key] - ref[key])
    assert len(got["arm"]) == len(draws) == 5
    for c in got["arm"]:
        key = c.metric + (f"|{c.attribute}" if c.attribute else "")
        low, high = np.quantile(draws[key], [0.025, 0.975])
        assert c.value == pytest.approx(point["a"][key] - point["b"][key], abs=1e-12), key
        assert (c.ci_low, c.ci_high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12)), key


def test_small_groups_are_left_out_and_errors_are_clear(two_arms) -> None:
    y, g, scores = two_arms
    g2 = g.copy()
    g2[:8] = "tiny"
    sens = pd.DataFrame({"site": g2})
    got = paired_changes(y, scores, sens, ["site"], n_boot=50, min_group_positives=5)
    eod = next(c for c in got["mitigated"] if c.metric == "equal_opportunity_difference")
    assert eod.groups == ["A", "B"]
    with pytest.raises(ValueError, match="reference arm 'baseline' has no scores"):
        paired_changes(y, {"other": scores["mitigated"]}, sens, ["site"], min_group_positives=5)
    with pytest.raises(ValueError, match="arm 'short': 3 scores"):
        paired_changes(y, {"baseline": scores["baseline"], "short": np.zeros(3)}, sens, ["site"],
                       min_group_positives=5)
