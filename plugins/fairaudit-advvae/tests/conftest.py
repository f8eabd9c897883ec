"""Fixtures: the built-in ``synthetic_embeddings`` split, our own generator, held-out probes.

Helpers are handed out as fixtures (``make_embeddings``, ``probes``) because the project runs
pytest with ``--import-mode=importlib``, where test folders are not importable packages.

Our own generator has a *non-linear* sex component and a 3-group race signal, so tests can check
that a linear-only removal would not be enough and that multi-class and continuous attributes are
handled.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def make_embeddings(
    n: int = 2400,
    dim: int = 128,
    seed: int = 0,
    task_signal: float = 0.75,
    sex_signal: float = 1.5,
    age_signal: float = 1.0,
    race_signal: float = 1.0,
    sex_variance: float = 0.8,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """``X`` (n, dim) float32, ``y`` 0/1 and sensitive attributes ``sex``, ``race``, ``age``.

    Each factor is written along its own random direction (not axis-aligned); on top, sex scales
    the variance of 4 further directions by ``1 + sex_variance`` (a signal only a non-linear probe
    sees).  The label is independent of every attribute, so a representation can keep it all while
    carrying no demographic information.
    """
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    u_task, u_sex, u_age = basis[:, 0], basis[:, 1], basis[:, 2]
    u_race = basis[:, 3:5]
    u_var = basis[:, 5:9]
    y = (rng.random(n) < 0.4).astype(int)
    sex = rng.random(n) < 0.5
    age = rng.uniform(40, 85, n)
    race = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    race_codes = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])[race] * 2 - 0.5
    X = rng.normal(size=(n, dim))
    X += np.outer((2 * y - 1) * task_signal, u_task)
    X += np.outer((2 * sex - 1) * sex_signal, u_sex)
    X += np.outer((age - 62.5) / 13.0 * age_signal, u_age)
    X += race_signal * race_codes @ u_race.T
    X += (rng.normal(size=(n, 4)) * (sex[:, None] * sex_variance)) @ u_var.T
    sensitive = pd.DataFrame(
        {
            "sex": np.where(sex, "M", "F"),
            "race": np.array(["A", "B", "C"])[race],
            "age": age,
        }
    )
    return X.astype(np.float32), y, sensitive


def mlp_probe_auc(Z: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Out-of-fold ROC AUC of an MLP (64 ReLU units) predicting binary ``labels`` from ``Z``
    (5-fold stratified cross-validation, standardised inputs)."""
    probe = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=400, random_state=seed),
    )
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scores = cross_val_predict(probe, Z, labels, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, scores))


def linear_probe_auc(Z: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """As :func:`mlp_probe_auc` with a logistic regression."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scores = cross_val_predict(probe, Z, labels, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, scores))


def task_auc(
    Z_train: np.ndarray, y_train: np.ndarray, Z_test: np.ndarray, y_test: np.ndarray
) -> float:
    """Test ROC AUC of a logistic regression fit on the training rows (the downstream model)."""
    model = LogisticRegression(max_iter=2000).fit(Z_train, y_train)
    return float(roc_auc_score(y_test, model.predict_proba(Z_test)[:, 1]))


@pytest.fixture(scope="session")
def probes() -> SimpleNamespace:
    """``mlp_probe_auc``, ``linear_probe_auc`` and ``task_auc``."""
    return SimpleNamespace(
        mlp_probe_auc=mlp_probe_auc, linear_probe_auc=linear_probe_auc, task_auc=task_auc
    )


@pytest.fixture(scope="session", name="make_embeddings")
def make_embeddings_fixture():
    """Our generator (see :func:`make_embeddings`)."""
    return make_embeddings


@pytest.fixture(scope="session")
def builtin_split() -> dict[str, object]:
    """The built-in ``synthetic_embeddings`` (2000 x 64, sex and age injected, sex entangled with
    the label, 10% label noise in women), split 70/30 stratified by label and sex."""
    from sklearn.model_selection import train_test_split

    from fairaudit.builtin.datasets.synthetic_embeddings import SyntheticEmbeddings

    data = SyntheticEmbeddings(n_samples=2000, dim=64, seed=0).load()
    sensitive = data.sensitive.assign(age=data.extras["age"])
    strata = data.y.astype(str) + sensitive["sex"].to_numpy().astype(str)
    train, test = train_test_split(
        np.arange(len(data.y)), test_size=0.3, random_state=0, stratify=strata
    )
    return {"X": data.X, "y": data.y, "sensitive": sensitive, "train": train, "test": test}
