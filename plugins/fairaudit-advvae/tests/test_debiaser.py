"""The debiaser's contract: parameters, inputs, outputs, determinism, NaN, report sections."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from fairaudit_advvae import AdversarialVAEDebiaser
from sklearn.exceptions import NotFittedError

from fairaudit import DataError
from fairaudit.errors import TrainingError
from fairaudit.params import validate_params

TINY = {
    "latent_dim": 8,
    "max_epochs": 4,
    "min_epochs": 1,
    "audit_epochs": 2,
    "progress": False,
    "device": "cpu",
    "random_state": 0,
}


@pytest.fixture(scope="module")
def small(make_embeddings):
    return make_embeddings(n=400, dim=24, seed=1)


def test_plugin_module_does_not_import_torch():
    import subprocess

    code = "import sys, fairaudit_advvae.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_yaml_parameters_validate():
    params = validate_params(
        AdversarialVAEDebiaser,
        {
            "attributes": ["sex", "age"],
            "hidden_dims": [],
            "attribute_types": {"age": "continuous"},
            "adversarial_mode": "grl",
        },
    )
    assert params["attributes"] == ("sex", "age") and params["hidden_dims"] == ()
    with pytest.raises(Exception, match="adversarial_mode"):
        validate_params(AdversarialVAEDebiaser, {"adversarial_mode": "minmax"})


def test_bad_values_are_rejected(small):
    X, y, sf = small
    with pytest.raises(ValueError, match="latent_dim"):
        AdversarialVAEDebiaser(**{**TINY, "latent_dim": 0}).fit(X, y, sensitive_features=sf)
    with pytest.raises(ValueError, match="val_fraction"):
        AdversarialVAEDebiaser(**{**TINY, "val_fraction": 1.5}).fit(X, y, sensitive_features=sf)
    with pytest.raises(DataError, match="different lengths"):
        AdversarialVAEDebiaser(**TINY).fit(X, y[:-1], sensitive_features=sf)
    with pytest.raises(DataError, match="2-D"):
        AdversarialVAEDebiaser(**TINY).fit(X[:, :, None], y, sensitive_features=sf)
    with pytest.raises(DataError, match="binary"):
        AdversarialVAEDebiaser(**TINY).fit(X, y + 1, sensitive_features=sf)


def test_outputs_and_shapes(small):
    X, y, sf = small
    est = AdversarialVAEDebiaser(**TINY)
    with pytest.raises(NotFittedError):
        est.transform(X)
    est.fit(X, y, sensitive_features=sf)
    recon = est.transform(X)
    assert recon.shape == X.shape and recon.dtype == np.float32
    np.testing.assert_array_equal(recon, est.transform(X))
    mean = est.set_params(output="latent_mean").transform(X)
    assert mean.shape == (len(X), 8)
    np.testing.assert_array_equal(est.set_params(output="latent").transform(X), mean)
    sampled = est.set_params(stochastic_transform=True).transform(X)
    assert not np.allclose(sampled, mean), "stochastic_transform samples z ~ q(z|x)"
    np.testing.assert_array_equal(sampled, est.transform(X))  # reproducible
    with pytest.raises(DataError, match="fitted on 24 features"):
        est.transform(X[:, :10])
    history = est.history_
    assert len(history) == 4 and {"train_recon", "val_objective", "val_adv_accuracy:sex"} <= set(
        history[0]
    )
    assert est.validation_split_ == "val" and 1 <= est.best_epoch_ <= 4
    assert est.adversary_audit_[0]["attribute"] == "sex"


def test_same_seed_same_result_other_seed_differs(small):
    X, y, sf = small
    a = AdversarialVAEDebiaser(**TINY).fit(X, y, sensitive_features=sf).transform(X)
    b = AdversarialVAEDebiaser(**TINY).fit(X, y, sensitive_features=sf).transform(X)
    c = (
        AdversarialVAEDebiaser(**{**TINY, "random_state": 1})
        .fit(X, y, sensitive_features=sf)
        .transform(X)
    )
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_seed_defaults_to_the_run_seed(small):
    from fairaudit import RunContext

    X, y, sf = small
    params = {**TINY, "random_state": None}
    a = AdversarialVAEDebiaser(**params).bind(RunContext(seed=7)).fit(X, y, sensitive_features=sf)
    b = AdversarialVAEDebiaser(**{**TINY, "random_state": 7}).fit(X, y, sensitive_features=sf)
    assert a.seed_ == 7
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


@pytest.mark.parametrize("mode", ["alternating", "grl"])
def test_diverging_training_raises(small, mode):
    X, y, sf = small
    with pytest.raises(TrainingError, match="diverged"):
        AdversarialVAEDebiaser(
            **{**TINY, "lr": 1e12, "max_epochs": 3, "adversarial_mode": mode}
        ).fit(X * 1e6, y, sensitive_features=sf)


def test_no_validation_split_on_tiny_data(small):
    X, y, sf = small
    est = AdversarialVAEDebiaser(**{**TINY, "val_fraction": 0.0}).fit(
        X[:60], y[:60], sensitive_features=sf[:60]
    )
    assert est.validation_split_ == "train" and est.best_epoch_ == len(est.history_) == 4


def test_report_blocks_render(small):
    from fairaudit.blocks import to_blocks
    from fairaudit.report.blocks import FigureSink, block_context

    X, y, sf = small
    est = AdversarialVAEDebiaser(**TINY)
    assert est.report_blocks() == []
    sections = est.fit(X, y, sensitive_features=sf).report_blocks()
    assert [s["kind"] for s in sections] == ["curve", "curve", "table"]
    table = sections[2]
    assert table["rows"][0][:3] == ["sex", "binary", "accuracy"] and len(table["rows"][0]) == len(
        table["columns"]
    )
    import json

    json.dumps(sections, allow_nan=False)
    sink = FigureSink()
    typed, problems = to_blocks(sections, "advvae")
    assert problems == []
    blocks = [
        block_context(b, __import__("pathlib").Path("."), sink, f"advvae-{i}")
        for i, b in enumerate(typed)
    ]
    assert [b["type"] for b in blocks] == ["figure", "figure", "table"]
