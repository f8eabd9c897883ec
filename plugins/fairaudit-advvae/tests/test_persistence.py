"""Checkpoints: safetensors + JSON config round-trip, the run-folder checkpoint, bad files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from fairaudit_advvae import AdversarialVAEDebiaser

from fairaudit import RunContext
from fairaudit.errors import CheckpointError

TINY = {
    "latent_dim": 8,
    "hidden_dims": (16,),
    "max_epochs": 3,
    "min_epochs": 1,
    "audit_epochs": 2,
    "progress": False,
    "device": "cpu",
    "random_state": 0,
    "attributes": ("sex", "race", "age"),
}


@pytest.fixture(scope="module")
def fitted(make_embeddings):
    X, y, sf = make_embeddings(n=300, dim=20, seed=2)
    return AdversarialVAEDebiaser(**TINY).fit(X, y, sensitive_features=sf), X


def test_save_load_round_trip(fitted, tmp_path):
    est, X = fitted
    path = est.save(tmp_path / "advvae.safetensors")
    twin = AdversarialVAEDebiaser.load(path)
    for output in ("reconstruction", "latent_mean"):
        np.testing.assert_array_equal(
            est.set_params(output=output).transform(X), twin.set_params(output=output).transform(X)
        )
    est.set_params(output="reconstruction")
    assert twin.get_params() == {**est.get_params(), "output": "latent_mean"}
    assert [t.kind for t in twin.targets_] == ["binary", "multiclass", "continuous"]
    assert twin.history_ == est.history_ and twin.best_epoch_ == est.best_epoch_


def test_checkpoint_in_run_folder(make_embeddings, tmp_path):
    X, y, sf = make_embeddings(n=200, dim=12, seed=4)
    est = AdversarialVAEDebiaser(**{**TINY, "attributes": ("sex",)}).bind(
        RunContext(work_dir=tmp_path)
    )
    est.fit(X, y, sensitive_features=sf)
    path = tmp_path / "checkpoints" / "advvae.safetensors"
    assert est.checkpoint_path_ == str(path) and path.is_file()
    np.testing.assert_array_equal(AdversarialVAEDebiaser.load(path).transform(X), est.transform(X))


def test_pickle_round_trip(fitted):
    est, X = fitted
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).transform(X), est.transform(X))


def test_bad_checkpoints_are_reported(fitted, tmp_path):
    _est, _ = fitted
    with pytest.raises(CheckpointError, match="not found"):
        AdversarialVAEDebiaser.load(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupted"):
        AdversarialVAEDebiaser.load(junk)
    import torch

    from fairaudit.training import save_checkpoint

    other = save_checkpoint(
        tmp_path / "other.safetensors", {"w": torch.zeros(2)}, {"format": "other"}
    )
    with pytest.raises(CheckpointError, match="not an advvae checkpoint"):
        AdversarialVAEDebiaser.load(other)
