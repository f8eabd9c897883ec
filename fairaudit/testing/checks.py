"""The individual conformance checks; each raises ``AssertionError`` with a clear message."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from fairaudit.base import (
    BaseDatasetLoader,
    BaseDebiaser,
    BaseGenerator,
    BaseInProcessor,
    BaseMetric,
    BaseModel,
    BasePostProcessor,
    CounterfactualSets,
    MetricContext,
    Plugin,
    StatsConfig,
)
from fairaudit.params import params_model
from fairaudit.registry import Registry
from fairaudit.testing.data import tiny_features, tiny_images

Check = Callable[[type], None]


def _instances(cls: type) -> Iterable[tuple[dict[str, Any], Any]]:
    param_sets = cls.get_test_params()
    assert param_sets, f"{cls.__name__}.get_test_params() returned no parameter set"
    for params in param_sets:
        validated = params_model(cls).model_validate(params)
        yield params, cls(**{k: getattr(validated, k) for k in params})


# ---------------------------------------------------------------- generic checks
def check_registration(cls: type) -> None:
    """Has a name and family, and registers in a fresh registry of its family."""
    assert issubclass(cls, Plugin), f"{cls!r} must subclass a fairaudit base class"
    assert isinstance(getattr(cls, "name", None), str) and cls.name, f"{cls.__name__} needs a 'name'"
    registry = Registry(cls.family)
    registry.add(cls)
    assert registry.get(cls.name) is cls


def check_parameters(cls: type) -> None:
    """Defaults validate, unknown keys are rejected, get_params/set_params/clone round-trip."""
    import pydantic
    from sklearn.base import clone

    model = params_model(cls)
    try:
        model.model_validate({"definitely_not_a_parameter": 1})
    except pydantic.ValidationError:
        pass
    else:
        raise AssertionError(f"{cls.__name__}: an unknown parameter was accepted")
    for params, est in _instances(cls):
        got = est.get_params()
        for key in params:
            assert key in got, f"{cls.__name__}.__init__ must store parameter {key!r} as an attribute"
        twin = clone(est)
        assert twin.get_params().keys() == got.keys(), f"{cls.__name__}: clone changed parameters"


# ---------------------------------------------------------------- debiasers
def _debiaser_data(cls: type) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    if "features" in cls.modalities:
        data = tiny_features()
        return np.asarray(data.X, np.float32), data.y, data.sensitive
    data = tiny_images()
    return np.asarray(data.images, np.float32), data.y, data.sensitive


def check_debiaser_fit_transform(cls: type) -> None:
    """fit returns self, transform gives one finite row per sample, inputs are not mutated,
    fitted attributes end in ``_``, transform before fit raises."""
    X, y, sf = _debiaser_data(cls)
    for _, est in _instances(cls):
        before_X, before_sf = X.copy(), sf.copy()
        fresh = copy.deepcopy(est)
        try:
            fresh.transform(X[:5])
        except Exception:
            pass
        else:
            raise AssertionError(f"{cls.__name__}.transform before fit must raise")
        out = est.fit(X, y, sensitive_features=sf)
        assert out is est, f"{cls.__name__}.fit must return self"
        fitted = [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]
        assert fitted, f"{cls.__name__}: fitted state must live in attributes ending with '_'"
        Z = np.asarray(est.transform(X))
        assert len(Z) == len(X), f"{cls.__name__}.transform returned {len(Z)} rows for {len(X)}"
        assert np.all(np.isfinite(Z)), f"{cls.__name__}.transform returned non-finite values"
        np.testing.assert_array_equal(X, before_X, err_msg=f"{cls.__name__} mutated X")
        pd.testing.assert_frame_equal(sf, before_sf)
        Zt, yt, sft = est.transform_train(X, y, sensitive_features=sf)
        assert len(Zt) == len(yt) == len(sft), f"{cls.__name__}.transform_train lengths differ"


def check_debiaser_lengths(cls: type) -> None:
    """Mismatched lengths of X, y and sensitive_features are rejected."""
    X, y, sf = _debiaser_data(cls)
    for _, est in _instances(cls):
        try:
            est.fit(X, y[:-3], sensitive_features=sf)
        except Exception:
            continue
        raise AssertionError(f"{cls.__name__}.fit accepted X and y of different lengths")


def check_debiaser_deterministic(cls: type) -> None:
    """Two fits with the same parameters give the same transform."""
    X, y, sf = _debiaser_data(cls)
    for _, est in _instances(cls):
        a = np.asarray(copy.deepcopy(est).fit(X, y, sensitive_features=sf).transform(X))
        b = np.asarray(copy.deepcopy(est).fit(X, y, sensitive_features=sf).transform(X))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5,
                                   err_msg=f"{cls.__name__} is not deterministic for fixed parameters")


def check_debiaser_pickle(cls: type) -> None:
    """A fitted debiaser survives pickling with identical output."""
    X, y, sf = _debiaser_data(cls)
    for _, est in _instances(cls):
        est.fit(X, y, sensitive_features=sf)
        twin = pickle.loads(pickle.dumps(est))
        np.testing.assert_allclose(np.asarray(est.transform(X)), np.asarray(twin.transform(X)),
                                   rtol=1e-5, atol=1e-6)


def _scores_ok(cls: type, scores: Any, n: int, what: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    assert scores.shape == (n,), f"{cls.__name__}.{what} returned shape {scores.shape}, expected ({n},)"
    assert np.all(np.isfinite(scores)) and scores.min() >= 0 and scores.max() <= 1, \
        f"{cls.__name__}.{what} must return finite scores in [0, 1]"
    return scores


def check_debiaser_stage(cls: type) -> None:
    """The stage is real: ``pre`` gives ``None`` or one positive weight per row from
    ``sample_weight``; ``in`` (a :class:`BaseInProcessor`) trains the given model and scores any
    rows; ``post`` (a :class:`BasePostProcessor`) adjusts a fitted model's scores given the groups.
    In/post leave ``transform`` the identity;
    a fitted in/post debiaser pickles with identical scores."""
    from fairaudit.builtin.models.logistic import LogisticModel

    X, y, sf = _debiaser_data(cls)
    stage = cls.stage
    assert stage in ("pre", "in", "post"), f"{cls.__name__}.stage must be 'pre', 'in' or 'post', got {stage!r}"
    if stage == "in":
        assert issubclass(cls, BaseInProcessor), f"{cls.__name__}: stage 'in' needs BaseInProcessor"
    if stage == "post":
        assert issubclass(cls, BasePostProcessor), f"{cls.__name__}: stage 'post' needs BasePostProcessor"
    for _, est in _instances(cls):
        if stage == "pre":
            if cls.sample_weight is BaseDebiaser.sample_weight:
                return  # unweighted: nothing more to check (and no extra fit)
            est.fit(X, y, sensitive_features=sf)
            w = est.sample_weight(y, sensitive_features=sf)
            if w is not None:
                w = np.asarray(w, dtype=np.float64)
                assert w.shape == (len(y),), f"{cls.__name__}.sample_weight returned shape {w.shape}"
                assert np.all(np.isfinite(w)) and np.all(w > 0), f"{cls.__name__}: weights must be finite, > 0"
            continue
        model = LogisticModel()
        if stage == "post":
            model.fit(X, y)
        out = est.fit_model(model, X, y, sensitive_features=sf)
        assert out is est, f"{cls.__name__}.fit_model must return self"
        np.testing.assert_array_equal(np.asarray(est.transform(X)), X,
                                      err_msg=f"{cls.__name__}: an {stage}-processing transform must be the identity")
        twin = pickle.loads(pickle.dumps(est))
        if stage == "in":
            scores = _scores_ok(cls, est.predict_proba(X), len(X), "predict_proba")
            np.testing.assert_allclose(scores, twin.predict_proba(X), rtol=1e-6, atol=1e-9)
            continue
        scores = _scores_ok(cls, est.predict_proba(X, sensitive_features=sf), len(X), "predict_proba")
        np.testing.assert_allclose(scores, twin.predict_proba(X, sensitive_features=sf), rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- models
def check_model_fit_predict(cls: type) -> None:
    """fit returns self; predict_proba gives finite scores in [0, 1] that beat chance."""
    from sklearn.metrics import roc_auc_score

    data = tiny_features() if "features" in cls.modalities else tiny_images(n=96)
    X = data.inputs
    for _, est in _instances(cls):
        assert est.fit(X, data.y) is est
        scores = np.asarray(est.predict_proba(X))
        assert scores.shape == (len(X),), f"{cls.__name__}.predict_proba must return shape (n,)"
        assert np.all((scores >= 0) & (scores <= 1)), f"{cls.__name__}: scores outside [0, 1]"
        assert roc_auc_score(data.y, scores) > 0.55, f"{cls.__name__} did not learn the training data"


# ---------------------------------------------------------------- metrics
def _metric_context(cls: type) -> MetricContext:
    data = tiny_features(n=400)
    rng = np.random.default_rng(0)
    scores = 1 / (1 + np.exp(-(2.0 * (data.y - 0.5) + rng.normal(size=len(data.y)))))
    half = len(data.y) // 2
    ctx = MetricContext(
        y_true=data.y[half:], sensitive=data.sensitive.iloc[half:].reset_index(drop=True),
        patient_ids=data.patient_ids[half:], y_score=scores[half:], attributes=["sex"],
        stats=StatsConfig(n_boot=50, n_permutations=50, min_group_size=5),
        features=np.asarray(data.X[half:]), features_train=np.asarray(data.X[:half]),
        y_train=data.y[:half], sensitive_train=data.sensitive.iloc[:half].reset_index(drop=True),
        val_y_true=data.y[:half], val_y_score=scores[:half])
    if "counterfactuals" in cls.requires:
        images = tiny_images(n=48)
        from fairaudit.builtin.datasets.synthetic_cxr import device_oracle

        ctx.y_true, ctx.sensitive, ctx.patient_ids = images.y, images.sensitive, images.patient_ids
        ctx.y_score = None
        ctx.images = images.images
        ctx.counterfactuals = CounterfactualSets(generated={"disease": images.counterfactual("disease")})
        ctx.predict_fn = lambda imgs: np.asarray(imgs).reshape(len(imgs), -1).mean(1)
        ctx.artefact_oracle = device_oracle
    return ctx


def check_metric_compute(cls: type) -> None:
    """compute returns MetricResults with finite values or a status explaining why not."""
    from fairaudit.results import MetricResult

    ctx = _metric_context(cls)
    for _, metric in _instances(cls):
        results = metric.compute(ctx)
        assert isinstance(results, list) and results, f"{cls.__name__}.compute returned no results"
        for r in results:
            assert isinstance(r, MetricResult), f"{cls.__name__}.compute must return MetricResult objects"
            if r.status == "ok" and r.value is not None:
                assert np.isfinite(r.value), f"{cls.__name__}: {r.metric} is not finite"
            if r.ci_low is not None and r.ci_high is not None:
                assert r.ci_low <= r.ci_high + 1e-12, f"{cls.__name__}: {r.metric} CI is reversed"
            MetricResult.model_validate_json(r.model_dump_json())
        again = metric.compute(ctx)
        assert [r.value for r in again] == [r.value for r in results], \
            f"{cls.__name__}.compute is not deterministic"


# ---------------------------------------------------------------- generators
def check_generator_fit_generate(cls: type) -> None:
    """fit returns self; generate gives one image per row, in [0, 1], of the training size."""
    data = tiny_images()
    for _, gen in _instances(cls):
        assert gen.fit(data) is gen, f"{cls.__name__}.fit must return self"
        y = np.array([0, 1, 0, 1])
        sf = data.sensitive.iloc[:4].reset_index(drop=True)
        images = np.asarray(gen.generate(y, sf))
        assert images.shape[0] == 4, f"{cls.__name__}.generate must return one image per row"
        assert images.shape[1:] == data.images.shape[1:], \
            f"{cls.__name__}.generate returned {images.shape[1:]}, expected {data.images.shape[1:]}"
        assert np.all(np.isfinite(images)) and images.min() >= 0 and images.max() <= 1
        if cls.supports_counterfactuals:
            cf = np.asarray(gen.counterfactual(data.images[:2], {"factor": "device", "to": 0}))
            assert cf.shape == data.images[:2].shape, f"{cls.__name__}.counterfactual changed the shape"


# ---------------------------------------------------------------- dataset loaders
def check_dataset_load(cls: type) -> None:
    """load returns an AuditDataset; check() on defaults returns a list."""
    from pathlib import Path

    from fairaudit.data import AuditDataset

    for _, loader in _instances(cls):
        assert isinstance(loader.check(Path.cwd()), list)
        data = loader.load()
        assert isinstance(data, AuditDataset)
        assert set(np.unique(data.y)) <= {0, 1}


# ---------------------------------------------------------------- assembly
def checks_for(cls: type) -> list[Check]:
    """The checks that apply to ``cls`` (by family)."""
    common: list[Check] = [check_registration, check_parameters]
    if issubclass(cls, BaseDebiaser):
        return [*common, check_debiaser_fit_transform, check_debiaser_lengths,
                check_debiaser_deterministic, check_debiaser_pickle, check_debiaser_stage]
    if issubclass(cls, BaseMetric):
        return [*common, check_metric_compute]
    if issubclass(cls, BaseGenerator):
        return [*common, check_generator_fit_generate]
    if issubclass(cls, BaseModel):
        return [*common, check_model_fit_predict]
    if issubclass(cls, BaseDatasetLoader):
        return [*common, check_dataset_load]
    return common


def check_plugin(cls: type) -> None:
    """Run every applicable check on ``cls``."""
    for check in checks_for(cls):
        check(cls)


def check_debiaser(cls: type) -> None:
    assert issubclass(cls, BaseDebiaser), f"{cls!r} is not a BaseDebiaser"
    check_plugin(cls)


def check_metric(cls: type) -> None:
    assert issubclass(cls, BaseMetric), f"{cls!r} is not a BaseMetric"
    check_plugin(cls)


def check_generator(cls: type) -> None:
    assert issubclass(cls, BaseGenerator), f"{cls!r} is not a BaseGenerator"
    check_plugin(cls)


def check_model(cls: type) -> None:
    assert issubclass(cls, BaseModel), f"{cls!r} is not a BaseModel"
    check_plugin(cls)


def check_dataset(cls: type) -> None:
    assert issubclass(cls, BaseDatasetLoader), f"{cls!r} is not a BaseDatasetLoader"
    check_plugin(cls)


def parametrize_with_checks(classes: list[type]) -> Any:
    """A ``pytest.mark.parametrize`` over (plugin_class, check), one test id per check."""
    import pytest

    params = [pytest.param(cls, check, id=f"{cls.__name__}-{check.__name__}")
              for cls in classes for check in checks_for(cls)]
    return pytest.mark.parametrize(("plugin_class", "check"), params)
