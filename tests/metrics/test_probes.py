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


# ---------------------------------------------------------------------- the probe family
@pytest.fixture
def one_thread():
    """One torch (and tree) thread: thread teams spinning on busy shared cores are 10x slower."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _family_ctx(data, attrs: list[str]) -> MetricContext:
    return MetricContext(
        y_true=data.y,
        sensitive=data.sensitive[attrs],
        patient_ids=data.patient_ids,
        features=np.asarray(data.X),
        extras=dict(data.extras),
        attributes=attrs,
        stats=STATS,
    )


def test_family_finds_nonlinear_sex_that_a_linear_probe_misses(one_thread) -> None:
    """Oracle: sex written only as extra variance of males (``sex_nonlinear``, no mean shift)."""
    from fairaudit.builtin.datasets.synthetic_embeddings import SyntheticEmbeddings

    data = SyntheticEmbeddings(n_samples=1500, dim=32, seed=0, sex_signal=0.0, sex_nonlinear=3.0).load()
    probe = AttributeProbe(continuous_attributes=[], shuffled_baseline=False)
    r = probe.compute(_family_ctx(data, ["sex"]))[0]
    family = r.details["family"]
    assert abs(family["linear"] - 0.5) < 0.06, family
    assert r.value > 0.75 and r.ci_low > 0.7 and r.details["probe"] != "linear", (r.value, family)
    assert r.value == max(family.values()) == family[r.details["probe"]]
    assert r.details["n_rows"] == 1500 and set(family) == {"linear", "mlp", "boosting"}


def test_family_agrees_with_the_scikit_learn_probes(one_thread) -> None:
    """Against the previous probes (standardise + ``LogisticRegression``; PCA +
    ``MLPClassifier(alpha=1)``) on the same folds, ground truth: attributes written into the
    embeddings.  The linear member is the same model: each AUC lies in the other's interval.
    The MLP is tuned (penalty chosen on an inner split), so it may only be stronger: its AUC is
    at least the lower end of the old MLP's interval, and so is the family's strongest."""
    from fairaudit.builtin.datasets.synthetic_embeddings import SyntheticEmbeddings
    from fairaudit.builtin.metrics._probe_family import fit_family, make_folds
    from fairaudit.builtin.metrics._probing import family_settings, fit_predict, make_probe
    from fairaudit.stats.groups import patient_codes
    from fairaudit.stats.probes import bootstrap_family_auc

    data = SyntheticEmbeddings(n_samples=1200, dim=48, seed=1, sex_signal=1.2, race_signal=1.5).load()
    X, patients = np.asarray(data.X), patient_codes(data.patient_ids, 1200)
    codes = {a: pd.factorize(data.sensitive[a], sort=True)[0] for a in ("sex", "race")}
    folds = make_folds(codes["sex"] * 3 + codes["race"], patients, 5, seed=0)
    p = AttributeProbe()
    settings = family_settings(p.name, ["linear", "mlp"], p.mlp_hidden, p.mlp_alpha, p.C, p.mlp_max_iter,
                               p.max_dims, 0, "cpu")
    ours, _ = fit_family(X, [c.astype(float) for c in codes.values()], [2, 3], folds, settings)
    for i, (attr, y) in enumerate(codes.items()):
        k = int(y.max()) + 1
        probas = {f"ours {m}": ours[m][i] for m in ours}
        for kind in ("linear", "mlp"):
            oof = np.zeros((len(y), k))
            for train, test in folds.outer:
                model = make_probe(kind, "binary" if k == 2 else "multiclass", seed=0, hidden=[64], max_iter=150,
                                   C=1.0, alpha=1.0, n_train=len(train), max_dims=256, n_features=X.shape[1])
                oof[test] = fit_predict(model, X[train], y[train], X[test], "binary", k)
            probas[f"sklearn {kind}"] = oof
        est, _ = bootstrap_family_auc(y, probas, patient_ids=patients, n_boot=400, seed=i)
        assert est["ours linear"].value > 0.7, (attr, est)
        a, b = est["ours linear"], est["sklearn linear"]
        assert b.ci_low <= a.value <= b.ci_high and a.ci_low <= b.value <= a.ci_high, (attr, a, b)
        assert est["ours mlp"].value >= est["sklearn mlp"].ci_low, (attr, est)
        old_best = max(est["sklearn linear"], est["sklearn mlp"], key=lambda e: e.value)
        assert max(est["ours linear"].value, est["ours mlp"].value) >= old_best.ci_low, (attr, est)


def test_family_result_details_and_shuffled_baseline(one_thread) -> None:
    res = _by(AttributeProbe(probes=["linear", "boosting"], cv_folds=3).compute(_ctx(_embeddings(400, True))))
    sex = res[("attribute_probe_auc", "sex", res[("attribute_probe_auc", "sex", "linear")].details["probe"])]
    d = sex.details
    assert set(d["family"]) == {"linear", "boosting"} and d["probe"] in d["family"]
    assert sex.value == d["family"][d["probe"]] == max(d["family"].values())
    assert sex.ci_low <= sex.value <= sex.ci_high and d["n_rows"] == 400 and d["cv_folds"] == 3
    assert all(abs(v - 0.5) < 0.15 for v in d["shuffled_family"].values()) and d["shuffled_auc"] < 0.65
    assert any("strongest probe of the family" in n for n in sex.notes)
    age = next(r for r in res.values() if r.metric == "attribute_probe_r2")
    mae = next(r for r in res.values() if r.metric == "attribute_probe_mae")
    assert age.details["probe"] == mae.details["probe"] and age.value == max(age.details["family"].values())
    assert age.value > 0.3 and mae.value == mae.details["family_mae"][mae.details["probe"]]


def test_probe_rows_are_capped_with_stratification(one_thread) -> None:
    data = _embeddings(600, True)
    res = AttributeProbe(probes=["linear"], cv_folds=3, max_samples=300, continuous_attributes=[],
                         shuffled_baseline=False).compute(_ctx(data))
    sex = next(r for r in res if r.attribute == "sex")
    assert sex.details["n_rows"] == 300 and any("300 of 600 rows" in n for n in sex.notes)


def test_old_probe_parameters_fail_clearly() -> None:
    import pydantic

    from fairaudit.params import validate_params

    data = _embeddings(200, True)
    with pytest.raises(ValueError, match="one hidden layer"):
        AttributeProbe(mlp_hidden=[64, 32]).compute(_ctx(data))
    with pytest.raises(pydantic.ValidationError):
        validate_params(AttributeProbe, {"probes": ["svm"]})
    assert validate_params(AttributeProbe, {"mlp_alpha": 0.1, "C": [0.1, 1.0]}) == {"mlp_alpha": 0.1, "C": [0.1, 1.0]}


def test_batched_linear_probe_is_scikit_learns_logistic_regression(one_thread) -> None:
    """The same penalised problem as ``LogisticRegression(C=1)``: the same probabilities."""
    from sklearn.linear_model import LogisticRegression

    from fairaudit.builtin.metrics._probe_family import principal_components
    from fairaudit.builtin.metrics._probe_models import Targets, fit_linear

    rng = np.random.default_rng(4)
    X = rng.normal(size=(600, 20))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=600) > 0).astype(float)
    comp = principal_components(X)
    train = np.zeros((1, 600), dtype=bool)
    train[0, :450] = True
    pred, _, _ = fit_linear(comp.x, Targets(y[:, None], np.array([2])), train, np.full((1, 1, 1), 1 / 450),
                            basis=comp.basis, variance=comp.variance, max_iter=200)
    x = comp.x  # standardised features: the rotation onto the principal axes changes nothing
    ref = LogisticRegression(C=1.0, tol=1e-8, max_iter=5000).fit(x[:450], y[:450]).predict_proba(x[450:])[:, 1]
    assert np.max(np.abs(pred[450:, 0, 0, 0, 1] - ref)) < 2e-3


def test_bootstrap_of_the_strongest_probe() -> None:
    from fairaudit.stats.probes import bootstrap_family_auc

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    strong, weak = rng.random(500) + 0.6 * y, rng.random(500) + 0.2 * y
    est, best = bootstrap_family_auc(y, {"strong": strong, "weak": weak}, n_boot=300, seed=2)
    assert best.value == est["strong"].value > est["weak"].value
    assert np.all(best.samples >= est["strong"].samples) and np.all(best.samples >= est["weak"].samples)
    single = bootstrap_macro_auc(y, strong, n_boot=300, seed=2)
    assert single.value == est["strong"].value and np.array_equal(single.samples, est["strong"].samples)


def test_prebinned_trees_equal_scikit_learns_on_the_same_codes() -> None:
    """Trees reading the family's bin codes without re-binning them are scikit-learn's trees
    fitted (and early-stopped) on those codes: the same probabilities and values."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from fairaudit.builtin.metrics._probe_trees import bin_codes, trees

    rng = np.random.default_rng(3)
    z = rng.normal(size=(900, 6))
    y = (z[:, 0] ** 2 + z[:, 1] + rng.normal(size=900) > 1).astype(int)
    codes = bin_codes(z, 31)
    assert codes.min() == 0 and codes.max() == 30 and np.all(np.diff(codes[np.argsort(z[:, 2]), 2]) >= 0)
    kw = dict(max_iter=50, learning_rate=0.3, max_leaf_nodes=7, max_bins=31, early_stopping=True,
              n_iter_no_change=5, random_state=0)
    fit, val, test = slice(0, 500), slice(500, 700), slice(700, 900)
    assert trees("classifier") is not HistGradientBoostingClassifier  # the hook is in use on this scikit-learn
    ours = trees("classifier")(**kw).fit(codes[fit], y[fit], X_val=codes[val], y_val=y[val])
    ref = HistGradientBoostingClassifier(**kw).fit(codes[fit], y[fit], X_val=codes[val], y_val=y[val])
    assert ours.n_iter_ == ref.n_iter_ and 1 < ours.n_iter_ < 50
    np.testing.assert_allclose(ours.predict_proba(codes[test]), ref.predict_proba(codes[test]), atol=1e-12)
    target = z[:, 0] ** 2 + rng.normal(size=900) * 0.1
    ours = trees("regressor")(**kw).fit(codes[fit], target[fit], X_val=codes[val], y_val=target[val])
    ref = HistGradientBoostingRegressor(**kw).fit(codes[fit], target[fit], X_val=codes[val], y_val=target[val])
    np.testing.assert_allclose(ours.predict(codes[test]), ref.predict(codes[test]), atol=1e-12)
