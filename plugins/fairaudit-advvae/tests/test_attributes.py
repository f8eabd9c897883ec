"""Attribute encodings (binary, multi-class, continuous, missing values) and their adversaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from fairaudit_advvae import AdversarialVAEDebiaser
from fairaudit_advvae.attributes import build_target, build_targets, encode_targets, infer_kind
from fairaudit_advvae.losses import adversary_losses

from fairaudit import DataError

TINY = {
    "latent_dim": 8,
    "max_epochs": 3,
    "min_epochs": 1,
    "audit_epochs": 2,
    "progress": False,
    "device": "cpu",
    "random_state": 0,
}


def test_kinds_are_inferred():
    assert infer_kind(pd.Series(["F", "M", "F"])) == "binary"
    assert infer_kind(pd.Series(["A", "B", "C", "A"])) == "multiclass"
    assert infer_kind(pd.Series(np.linspace(40, 80, 50))) == "continuous"
    assert infer_kind(pd.Series([0, 1, 2, 1, 0])) == "multiclass", "few integer codes are groups"
    with_missing = pd.Series([*list(np.linspace(40, 80, 30)), "(missing)", None])
    assert infer_kind(with_missing) == "continuous"


def test_missing_values_are_masked_not_a_group():
    target = build_target("sex", pd.Series(["F", "M", "(missing)", None, "M"]))
    assert target.classes == ("F", "M")
    values, mask = target.encode(pd.Series(["M", "(missing)", "F", "X"]))
    assert mask.tolist() == [True, False, True, False]
    assert values[mask].tolist() == [1.0, 0.0]


def test_continuous_is_standardised_on_training_rows():
    age = pd.Series([40.0, 50.0, 60.0, 70.0, np.nan, *list(np.linspace(41, 79, 20))])
    target = build_target("age", age)
    values, mask = target.encode(age)
    assert target.kind == "continuous" and not mask[4]
    assert abs(values[mask].mean()) < 1e-6 and abs(values[mask].std() - 1) < 1e-6


def test_declared_types_override_and_are_checked():
    codes = pd.DataFrame({"site": [1, 2, 3, 1, 2, 3], "sex": list("FMFMFM")})
    assert build_targets(codes, ("site",), {"site": "continuous"})[0].kind == "continuous"
    with pytest.raises(DataError, match="declared binary"):
        build_targets(codes, ("site",), {"site": "binary"})
    with pytest.raises(DataError, match="not in 'attributes'"):
        build_targets(codes, ("sex",), {"site": "continuous"})
    with pytest.raises(DataError, match="available"):
        build_targets(codes, ("race",))
    with pytest.raises(DataError, match="fewer than two groups"):
        build_targets(pd.DataFrame({"sex": ["F"] * 4}), ("sex",))


def test_losses_are_one_at_chance():
    """The best constant predictor scores 1.0 for every kind (lambda_adv means the same)."""
    frame = pd.DataFrame(
        {
            "sex": list("FFFM") * 25,
            "race": list("AABC") * 25,
            "age": np.random.default_rng(0).normal(60, 10, 100),
        }
    )
    specs = build_targets(frame, ("sex", "race", "age"))
    T, M = map(torch.as_tensor, encode_targets(specs, frame))
    prior_logit = torch.full((100, 1), float(np.log(0.25 / 0.75)))
    race_logits = torch.log(torch.tensor([0.5, 0.25, 0.25])).expand(100, 3)
    outputs = [prior_logit, race_logits, torch.zeros(100, 1)]
    np.testing.assert_allclose(
        adversary_losses(outputs, T, M, specs).numpy(), [1.0, 1.0, 1.0], atol=1e-4
    )


@pytest.mark.slow  # acceptance scale: 15 s alone, 90 s beside other work on 2 cores
def test_multiclass_race_and_continuous_age_are_removed(make_embeddings, probes):
    """Race (3 groups) and age (continuous) as adversary targets: the latent code loses them."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict, cross_val_score

    X, y, sf = make_embeddings(
        n=1500, dim=32, seed=3, race_signal=2.0, age_signal=2.0, sex_variance=0.0
    )
    train, test = np.arange(1000), np.arange(1000, 1500)
    debiaser = AdversarialVAEDebiaser(
        **{
            **TINY,
            "attributes": ("race", "age"),
            "latent_dim": 32,
            "max_epochs": 40,
            "min_epochs": 30,
            "output": "latent_mean",
        }
    )
    debiaser.fit(X[train], y[train], sensitive_features=sf.iloc[train])
    assert [t.kind for t in debiaser.targets_] == ["multiclass", "continuous"]
    assert {
        "val_adv_accuracy:race",
        "val_adv_R2:age",
        "val_probe_auc:race",
        "val_probe_r2:age",
    } <= set(debiaser.history_[-1])

    def race_auc(Z):
        scores = cross_val_predict(
            LogisticRegression(max_iter=2000),
            Z,
            sf["race"].to_numpy()[test],
            cv=5,
            method="predict_proba",
        )
        return roc_auc_score(sf["race"].to_numpy()[test], scores, multi_class="ovr")

    def age_r2(Z):
        return cross_val_score(RidgeCV(), Z, sf["age"].to_numpy()[test], cv=5, scoring="r2").mean()

    Z = debiaser.transform(X[test])
    before = {"race": race_auc(X[test]), "age": age_r2(X[test])}
    after = {"race": race_auc(Z), "age": age_r2(Z)}
    print(f"\nadvvae race/age: before {before}, after {after}")
    assert before["race"] > 0.85 and before["age"] > 0.5
    assert after["race"] < 0.7 and after["age"] < 0.2
    assert probes.task_auc(debiaser.transform(X[train]), y[train], Z, y[test]) > 0.7
