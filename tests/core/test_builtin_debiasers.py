"""The built-in mitigation baselines against ground truth and against fairlearn itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fairaudit.builtin import debiasers as d
from fairaudit.builtin.datasets.synthetic_embeddings import SyntheticEmbeddings
from fairaudit.builtin.models.logistic import LogisticModel
from fairaudit.testing import checks_for

BUILTIN = [d.LeaceEraser, d.MeanProjection, d.INLP, d.Reweighing, d.ExponentiatedGradientMitigation,
           d.ThresholdOptimizerMitigation]


def test_every_registered_builtin_debiaser_is_checked() -> None:
    from fairaudit.plugins import load_plugins

    names = set(load_plugins(autoload=False).registry("debiasers").names())
    assert names == {cls.name for cls in BUILTIN}
    assert {cls.name: cls.stage for cls in BUILTIN} == {
        "leace": "pre", "mean_projection": "pre", "inlp": "pre", "reweighing": "pre",
        "exponentiated_gradient": "in", "threshold_optimizer": "post"}


@pytest.mark.parametrize("cls", BUILTIN, ids=lambda c: c.name)
def test_conformance(cls: type) -> None:
    for check in checks_for(cls):
        check(cls)


def _split(**params):
    data = SyntheticEmbeddings(n_samples=2000, dim=64, seed=0, **params).load()
    tr = np.arange(len(data.y)) < 1400
    return data, tr


def _linear_auc(Z: np.ndarray, s: np.ndarray, tr: np.ndarray) -> float:
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(Z[tr], s[tr])
    return float(roc_auc_score(s[~tr], clf.predict_proba(Z[~tr])[:, 1]))


@pytest.mark.parametrize("cls", [d.LeaceEraser, d.MeanProjection, d.INLP], ids=lambda c: c.name)
def test_linear_erasure_drives_a_linear_probe_to_chance_on_linear_sex(cls: type) -> None:
    data, tr = _split()
    s = (data.sensitive["sex"] == "M").to_numpy().astype(int)
    Z = cls(attributes=["sex"]).fit(data.X[tr], data.y[tr], sensitive_features=data.sensitive[tr]).transform(data.X)
    assert _linear_auc(data.X, s, tr) > 0.95
    # INLP stops at its held-out tolerance, so it leaves a little more than the closed forms
    assert abs(_linear_auc(Z, s, tr) - 0.5) < (0.1 if cls is d.INLP else 0.05)


def test_leace_equalises_group_means_with_the_least_change() -> None:
    """LEACE's theorem: group means equal on the fitted rows; among such erasers it changes X least."""
    data, tr = _split()
    X, sf = data.X[tr].astype(np.float64), data.sensitive[tr]
    Z = d.LeaceEraser(attributes=["sex"]).fit(X, data.y[tr], sensitive_features=sf).transform(X).astype(np.float64)
    male = (sf["sex"] == "M").to_numpy()
    np.testing.assert_allclose(Z[male].mean(0), Z[~male].mean(0), atol=2e-3)
    Zp = d.MeanProjection(attributes=["sex"]).fit(X, data.y[tr], sensitive_features=sf).transform(X)
    assert np.mean((Z - X) ** 2) < np.mean((Zp - X) ** 2)


def test_leace_leaves_the_nonlinear_sex_signal() -> None:
    """With ``sex_nonlinear`` men spread more inside the sex subspace: a non-linear oracle feature
    (squared norm in the true subspace) still finds sex after linear erasure."""
    data, tr = _split(sex_nonlinear=2.0)
    basis = data.meta["ground_truth"]["bases"]["sex"]
    s = (data.sensitive["sex"] == "M").to_numpy().astype(int)
    Z = d.LeaceEraser(attributes=["sex"]).fit(data.X[tr], data.y[tr],
                                              sensitive_features=data.sensitive[tr]).transform(data.X)
    assert abs(_linear_auc(Z, s, tr) - 0.5) < 0.06
    oracle = np.sum(((Z - Z[tr].mean(0)) @ basis) ** 2, axis=1)
    assert roc_auc_score(s[~tr], oracle[~tr]) > 0.75


def test_reweighing_makes_label_independent_of_group() -> None:
    data, tr = _split(label_group_correlation=0.2)
    sf, y = data.sensitive[tr], data.y[tr]
    rw = d.Reweighing(attributes=["sex", "age_group"]).fit(data.X[tr], y, sensitive_features=sf)
    w = rw.sample_weight(y, sensitive_features=sf)
    groups = sf["sex"] + "|" + sf["age_group"].astype(str)
    assert abs(w.sum() - len(y)) < 1e-6 * len(y)
    rates = [np.sum(w[(groups == g).to_numpy()] * y[(groups == g).to_numpy()]) / np.sum(w[(groups == g).to_numpy()])
             for g in groups.unique()]
    np.testing.assert_allclose(rates, y.mean(), atol=1e-9)
    raw = [y[(sf["sex"] == g).to_numpy()].mean() for g in ("F", "M")]
    assert raw[1] - raw[0] > 0.1  # the data did have the correlation


def _eod(y: np.ndarray, decision: np.ndarray, g: np.ndarray) -> float:
    tpr = [decision[(y == 1) & (g == v)].mean() for v in np.unique(g)]
    return float(max(tpr) - min(tpr))


def test_threshold_optimizer_lowers_eod_and_equals_fairlearn() -> None:
    """Quickstart-like data (10% label noise in women): fairlearn's decisions, bit for bit, and a
    smaller TPR gap than the baseline's 0.5 threshold."""
    from fairlearn.postprocessing import ThresholdOptimizer

    from fairaudit.builtin.debiasers._sklearn_adaptor import SklearnClassifier

    data = SyntheticEmbeddings(n_samples=2000, dim=256, seed=0).load()
    tr = np.arange(len(data.y)) < 1400
    X, y, sf = data.X, data.y, data.sensitive
    model = LogisticModel(C=0.05).fit(X[tr], y[tr])
    base = (model.predict_proba(X[~tr]) >= 0.5).astype(int)
    to = d.ThresholdOptimizerMitigation(attributes=["sex"], random_state=0).fit_model(
        model, X[tr], y[tr], sensitive_features=sf[tr])
    ours = to.predict_proba(X[~tr], sensitive_features=sf[~tr])
    ref = ThresholdOptimizer(estimator=SklearnClassifier.prefit(model), constraints="equalized_odds",
                             objective="balanced_accuracy_score", prefit=True, predict_method="predict_proba")
    ref.fit(X[tr], y[tr], sensitive_features=sf.loc[tr, ["sex"]].reset_index(drop=True))
    expected = ref.predict(X[~tr], sensitive_features=sf.loc[~tr, ["sex"]].reset_index(drop=True), random_state=0)
    np.testing.assert_array_equal(ours, expected)
    g = sf["sex"].to_numpy()[~tr]
    before, after = _eod(y[~tr], base, g), _eod(y[~tr], ours, g)
    assert before > 0.1 and after < before / 2, (before, after)


def test_exponentiated_gradient_equals_fairlearn_on_a_scikit_learn_pipeline() -> None:
    """Around the built-in logistic model the arm is fairlearn's reduction of the same estimator."""
    from fairlearn.reductions import EqualizedOdds, ExponentiatedGradient
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = SyntheticEmbeddings(n_samples=600, dim=16, seed=1).load()
    X, y, sf = data.X, data.y, data.sensitive
    eg = d.ExponentiatedGradientMitigation(attributes=["sex"], max_iter=20).fit_model(
        LogisticModel(C=0.5), X, y, sensitive_features=sf)
    class Reference(ClassifierMixin, BaseEstimator):
        """Standardise, then a weighted scikit-learn logistic regression."""

        def fit(self, X, y, sample_weight=None):
            self.pipe_ = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000))
            self.pipe_.fit(X, y, logisticregression__sample_weight=sample_weight)
            self.classes_ = self.pipe_.classes_
            return self

        def predict(self, X):
            return self.pipe_.predict(X)

    ref = ExponentiatedGradient(Reference(), constraints=EqualizedOdds(), eps=0.01, max_iter=20)
    ref.fit(X, y, sensitive_features=pd.DataFrame({"sex": sf["sex"].astype(str).to_numpy()}))
    expected = ref._pmf_predict(X)[:, 1]
    np.testing.assert_allclose(eg.predict_proba(X), expected, atol=1e-6)


STAGES_SPEC = """\
name: stages
seed: 0
dataset:
  name: synthetic_embeddings
  params: {n_samples: 2000, dim: 256, seed: 0}
attributes: [sex]
split: {test_size: 0.3, stratify: [sex]}
model: {name: logistic, params: {C: 0.05}}
debiasers:
  - {name: leace, label: leace}
  - {name: reweighing, label: reweighing}
  - {name: exponentiated_gradient, label: eg, params: {attributes: [sex], max_iter: 10}}
  - {name: threshold_optimizer, label: to, params: {attributes: [sex]}}
metrics:
  - group_metrics
  - {name: attribute_probe, params: {probes: [linear], cv_folds: 3}}
statistics: {n_boot: 50, n_permutations: 50, min_group_size: 10}
report: {formats: []}
"""


@pytest.mark.slow
def test_runner_runs_every_stage(tmp_path) -> None:
    """pre (features and weights), in (the model under a constraint), post (the baseline's
    decisions adjusted): every arm runs; in/post keep the representation, so their probe equals
    the baseline's; LEACE's linear probe is at chance; the post arm's scores are decisions."""
    from fairaudit.testing.runs import cli, load_result, only_run_dir

    spec = tmp_path / "spec.yaml"
    spec.write_text(STAGES_SPEC)
    outcome = cli("run", spec, "-o", tmp_path / "out", "-q")
    assert outcome.exit_code == 0, outcome.output
    result = load_result(only_run_dir(tmp_path / "out"))
    arms = {a.name: a for a in result.arms}
    assert [a.status for a in result.arms] == ["ok"] * 5, [(a.name, a.error) for a in result.arms]
    probe = {n: a.metric("attribute_probe_auc_linear", "sex") or next(
        m for m in a.metrics if m.plugin == "attribute_probe" and m.attribute == "sex") for n, a in arms.items()}
    assert probe["baseline"].value > 0.9
    assert probe["leace"].value < 0.6
    for name in ("eg", "to", "reweighing"):
        assert probe[name].value == pytest.approx(probe["baseline"].value)
    eod = {n: a.metric("equal_opportunity_difference", "sex").value for n, a in arms.items()}
    assert eod["to"] < eod["baseline"]
    assert any("ThresholdOptimizer" in str(b) for b in arms["to"].blocks)
