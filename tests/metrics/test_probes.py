"""Attribute probes, the stronger attacker and the label-flip bias attack."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairaudit.base import MetricContext, StatsConfig
from fairaudit.builtin.metrics.attack_probe import AttackProbe
from fairaudit.builtin.metrics.attribute_probe import AttributeProbe
from fairaudit.stats.probes import bootstrap_macro_auc, bootstrap_regression, macro_auc

STATS = StatsConfig(n_boot=200, n_permutations=0, min_group_size=10, min_group_positives=5)


def _embeddings(n: int, signal: bool, seed: int = 0):
    from fairaudit.builtin.datasets.synthetic_embeddings import SyntheticEmbeddings

    strength = {} if signal else {"sex_signal": 0.0, "age_signal": 0.0, "race_signal": 0.0}
    return SyntheticEmbeddings(n_samples=n, dim=32, seed=seed, **strength).load()


def _ctx(data, **kw) -> MetricContext:
    return MetricContext(
        y_true=data.y,
        sensitive=data.sensitive,
        patient_ids=data.patient_ids,
        features=np.asarray(data.X),
        extras=dict(data.extras),
        attributes=["sex", "race"],
        stats=STATS,
        **kw,
    )


def _by(results):
    return {(r.metric, r.attribute, r.details.get("probe")): r for r in results}


def test_macro_auc_equals_sklearn_ovr_macro() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    p = rng.dirichlet(np.ones(3), 300) + 0.3 * np.eye(3)[y]
    p /= p.sum(1, keepdims=True)
    assert macro_auc(y, p) == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12
    )
    yb = rng.integers(0, 2, 200)
    s = rng.random(200) + 0.2 * yb
    assert macro_auc(yb, s) == pytest.approx(roc_auc_score(yb, s), abs=1e-12)
    ci = bootstrap_macro_auc(y, p, n_boot=300, seed=1)
    assert ci.ci_low < ci.value < ci.ci_high


def test_regression_errors_equal_sklearn() -> None:
    from sklearn.metrics import mean_absolute_error, r2_score

    rng = np.random.default_rng(1)
    y = rng.uniform(20, 90, 200)
    pred = y + rng.normal(0, 8, 200)
    mae, r2 = bootstrap_regression(y, pred, n_boot=200, seed=0)
    assert mae.value == pytest.approx(mean_absolute_error(y, pred))
    assert r2.value == pytest.approx(r2_score(y, pred))
    assert mae.ci_low < mae.value < mae.ci_high


def test_linear_probe_high_on_signal_and_chance_on_random() -> None:
    sig = _by(AttributeProbe(probes=["linear"], cv_folds=4).compute(_ctx(_embeddings(400, True))))
    rnd = _by(AttributeProbe(probes=["linear"], cv_folds=4).compute(_ctx(_embeddings(400, False))))
    sex = sig[("attribute_probe_auc", "sex", "linear")]
    assert sex.value > 0.95 and sex.ci_low > 0.9
    assert sex.details["task"] == "binary" and sex.details["cv_folds"] == 4
    assert abs(sex.details["shuffled_auc"] - 0.5) < 0.12
    race = sig[("attribute_probe_auc", "race", "linear")]
    assert race.details["task"] == "multiclass" and race.details["classes"] == ["A", "B", "C"]
    assert race.value > 0.7
    assert sig[("attribute_probe_r2", "age", "linear")].value > 0.3
    assert sig[("attribute_probe_mae", "age", "linear")].details["task"] == "regression"
    for attr in ("sex", "race"):
        r = rnd[("attribute_probe_auc", attr, "linear")]
        assert abs(r.value - 0.5) < 0.1 and r.ci_low < 0.5 + 0.05
    assert rnd[("attribute_probe_r2", "age", "linear")].value < 0.1
    assert any("encodes the attribute, not that" in n for n in sex.notes)


def test_mlp_probe() -> None:
    data = _embeddings(300, True)
    probe = AttributeProbe(
        probes=["mlp"],
        cv_folds=3,
        mlp_hidden=[16],
        mlp_max_iter=80,
        continuous_attributes=[],
        shuffled_baseline=False,
    )
    ctx = MetricContext(
        y_true=data.y,
        sensitive=data.sensitive[["sex"]],
        patient_ids=data.patient_ids,
        features=np.asarray(data.X),
        attributes=["sex"],
        stats=STATS,
    )
    res = _by(probe.compute(ctx))
    r = res[("attribute_probe_auc", "sex", "mlp")]
    assert r.value > 0.85 and r.details["shuffled_auc"] is None


def _split(data, n_train: int):
    return data.subset(np.arange(n_train)), data.subset(np.arange(n_train, len(data.y)))


def test_attack_probe_auc() -> None:
    for signal, check in ((True, lambda a: a > 0.9), (False, lambda a: abs(a - 0.5) < 0.1)):
        train, test = _split(_embeddings(900, signal), 600)
        ctx = MetricContext(
            y_true=test.y,
            sensitive=test.sensitive[["sex"]],
            patient_ids=test.patient_ids,
            features=np.asarray(test.X),
            features_train=np.asarray(train.X),
            y_train=train.y,
            sensitive_train=train.sensitive[["sex"]],
            attributes=["sex"],
            stats=STATS,
        )
        res = AttackProbe(
            hidden=[32], max_iter=80, bias_attack=False, shuffled_baseline=False
        ).compute(ctx)
        r = res[0]
        assert r.metric == "attack_probe_auc" and check(r.value), (signal, r.value)
        assert r.details["n_train"] == 600 and r.ci_low <= r.value <= r.ci_high


def _flip_features(
    n: int, rng: np.random.Generator, debiased: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disease written in sex-specific directions (original) or in a shared one (debiased)."""
    sex = rng.choice(np.array(["F", "M"], dtype=object), n)
    y = rng.integers(0, 2, n)
    f = (sex == "F").astype(float)
    noise = rng.normal(0, 0.5, (n, 6))
    if debiased:
        X = np.column_stack([2 * y - 1, np.zeros(n), np.zeros(n)]) + noise[:, :3]
    else:
        X = np.column_stack([(2 * y - 1) * (1 - f), (2 * y - 1) * f, 2 * f - 1]) + noise[:, :3]
    return np.column_stack([X, noise[:, 3:]]), y, sex


def test_bias_attack_eod_grows_with_flip_fraction() -> None:
    rng = np.random.default_rng(0)
    curves = {}
    for debiased in (False, True):
        Xtr, ytr, str_ = _flip_features(800, rng, debiased)
        Xte, yte, ste = _flip_features(400, rng, debiased)
        ctx = MetricContext(
            y_true=yte,
            sensitive=pd.DataFrame({"sex": ste}),
            patient_ids=np.arange(400),
            features=Xte,
            features_train=Xtr,
            y_train=ytr,
            sensitive_train=pd.DataFrame({"sex": str_}),
            attributes=["sex"],
            stats=STATS,
        )
        res = AttackProbe(
            hidden=[8], max_iter=20, flipped_groups=["F"], fractions=[0.0, 0.25, 0.5, 0.75, 1.0]
        ).compute(ctx)
        attack = next(r for r in res if r.metric == "bias_attack_eod")
        d = attack.details
        assert d["flipped_group"] == "F" and d["attribute"] == "sex" and len(d["eod"]) == 5
        assert all(
            lo <= v <= hi
            for v, lo, hi in zip(d["eod"], d["eod_ci_low"], d["eod_ci_high"], strict=True)
        )
        assert attack.value == d["eod"][-1]
        curves[debiased] = np.array(d["eod"])
    original, debiased_curve = curves[False], curves[True]
    assert original[0] < 0.1 and original[-1] > 0.6, original
    assert np.all(np.diff(original[[0, 2, 4]]) > 0)
    assert debiased_curve.max() < 0.25, debiased_curve
