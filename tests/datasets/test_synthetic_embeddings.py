"""synthetic_embeddings against its ground truth: signals, subspaces, label rates, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fairaudit.builtin.datasets.synthetic_embeddings import SyntheticEmbeddings
from fairaudit.errors import DataError
from fairaudit.plugins import load_plugins
from fairaudit.testing import check_plugin


@pytest.fixture(scope="module")
def default_data():
    return SyntheticEmbeddings().load()


def test_shapes_and_columns(default_data) -> None:
    d = default_data
    assert d.X.shape == (2000, 1408) and d.X.dtype == np.float32
    assert set(np.unique(d.y)) == {0, 1}
    assert list(d.sensitive.columns) == ["sex", "age_group", "race"]
    assert set(d.sensitive["sex"]) == {"F", "M"}
    assert set(d.sensitive["age_group"]) == {"<50", "50-65", ">65"}
    assert set(d.sensitive["race"]) == {"A", "B", "C"}
    age = d.extras["age"]
    assert 30 <= age.min() and age.max() <= 90
    expected = np.where(age < 50, "<50", np.where(age <= 65, "50-65", ">65"))
    assert (d.sensitive["age_group"].to_numpy() == expected).all()
    share = d.sensitive["race"].value_counts(normalize=True)
    assert share["A"] > share["B"] > share["C"]
    assert abs(share["A"] - 0.6) < 0.05 and abs(share["C"] - 0.15) < 0.04


def test_determinism() -> None:
    a = SyntheticEmbeddings(n_samples=300, dim=64, seed=3).load()
    b = SyntheticEmbeddings(n_samples=300, dim=64, seed=3).load()
    c = SyntheticEmbeddings(n_samples=300, dim=64, seed=4).load()
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.sensitive.equals(b.sensitive)
    assert not np.allclose(a.X, c.X)
    assert not a.sensitive.equals(c.sensitive)


def test_default_signal_strengths(default_data, probe_auc) -> None:
    d = default_data
    sex_auc = probe_auc(d.X, d.sensitive["sex"] == "M")
    task_auc = probe_auc(d.X, d.y)
    assert sex_auc > 0.95, sex_auc
    assert 0.78 <= task_auc <= 0.92, task_auc
    # the observed label is noisier than the truth (default noise in women)
    assert probe_auc(d.X, d.extras["y_true"]) > task_auc


def test_zero_sex_signal_gives_chance_probe(probe_auc) -> None:
    d = SyntheticEmbeddings(sex_signal=0.0, seed=1).load()
    auc = probe_auc(d.X, d.sensitive["sex"] == "M")
    assert abs(auc - 0.5) < 0.05, auc
    assert probe_auc(d.X, d.y) > 0.78


def test_subspaces_are_mixed_and_removable(default_data, probe_auc) -> None:
    d = default_data
    gt = d.meta["ground_truth"]
    sex_dir, label_dir = gt["directions"]["sex"], gt["directions"]["label"]
    assert abs(np.linalg.norm(sex_dir) - 1) < 1e-9
    assert gt["cosine_sex_label"] == pytest.approx(0.3, abs=1e-9)
    assert sex_dir @ label_dir == pytest.approx(0.3, abs=1e-9)
    for basis in gt["bases"].values():
        np.testing.assert_allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-9)
    # not axis-aligned: no coordinate carries much of the direction, no single dim separates sex
    assert np.abs(sex_dir).max() < 0.25
    male = (d.sensitive["sex"] == "M").to_numpy()
    ranks = rankdata(d.X, axis=0)  # per-coordinate AUC via the rank-sum statistic
    n1, n0 = male.sum(), (~male).sum()
    auc_per_dim = (ranks[male].sum(0) - n1 * (n1 + 1) / 2) / (n1 * n0)
    assert roc_auc_score(male, d.X[:, 0]) == pytest.approx(auc_per_dim[0])
    best_single = np.abs(auc_per_dim - 0.5).max() + 0.5
    assert best_single < 0.72, best_single
    # erasing the ground-truth sex subspace removes sex and keeps most of the task
    basis = gt["bases"]["sex"]
    erased = d.X - (d.X @ basis) @ basis.T
    assert abs(probe_auc(erased, male) - 0.5) < 0.06
    assert probe_auc(erased, d.y) > 0.75


def test_label_group_correlation_rates() -> None:
    d = SyntheticEmbeddings(n_samples=20000, dim=20, prevalence=0.3, label_group_correlation=0.2,
                            group_label_noise={}).load()
    y_true, sex = d.extras["y_true"], d.sensitive["sex"].to_numpy()
    assert y_true[sex == "M"].mean() == pytest.approx(0.4, abs=0.02)
    assert y_true[sex == "F"].mean() == pytest.approx(0.2, abs=0.02)
    np.testing.assert_array_equal(d.y, y_true)  # no noise requested


def test_group_label_noise_rates_and_tpr_gap() -> None:
    d = SyntheticEmbeddings(n_samples=20000, dim=40, group_label_noise={"sex=F": 0.2, "C": 0.1},
                            seed=2).load()
    flipped = d.extras["label_flipped"].astype(bool)
    np.testing.assert_array_equal(d.y != d.extras["y_true"], flipped)
    sex, race = d.sensitive["sex"].to_numpy(), d.sensitive["race"].to_numpy()
    assert flipped[(sex == "F") & (race != "C")].mean() == pytest.approx(0.2, abs=0.02)
    assert flipped[(sex == "M") & (race != "C")].mean() == 0.0
    assert flipped[(sex == "M") & (race == "C")].mean() == pytest.approx(0.1, abs=0.03)
    assert flipped[(sex == "F") & (race == "C")].mean() == pytest.approx(0.28, abs=0.04)
    # a real TPR gap against the observed labels: women's recorded positives are noisier
    half = len(d.y) // 2
    clf = LogisticRegression(max_iter=2000).fit(d.X[:half], d.y[:half])
    pred = clf.predict(d.X[half:])
    y_test, sex_test = d.y[half:], sex[half:]
    tpr = {g: pred[(sex_test == g) & (y_test == 1)].mean() for g in ("F", "M")}
    assert tpr["M"] - tpr["F"] > 0.1, tpr


def test_false_negative_noise_only_hides_positives() -> None:
    d = SyntheticEmbeddings(n_samples=10000, dim=20, group_label_noise={"F": 0.3},
                            label_noise_mode="false_negative").load()
    y_true, y = d.extras["y_true"], d.y
    assert (y[y_true == 0] == 0).all()
    female_pos = (d.sensitive["sex"].to_numpy() == "F") & (y_true == 1)
    assert (y[female_pos] == 0).mean() == pytest.approx(0.3, abs=0.04)


@pytest.mark.parametrize("noise", [{"X": 0.1}, {"sex=Q": 0.1}, {"F": 0.7}])
def test_bad_group_noise_is_a_data_error(noise) -> None:
    with pytest.raises(DataError, match="group_label_noise"):
        SyntheticEmbeddings(n_samples=50, dim=10, group_label_noise=noise).load()


def test_patients_share_their_factors() -> None:
    d = SyntheticEmbeddings(n_samples=300, dim=20, images_per_patient=3).load()
    frame = d.sensitive.assign(pid=d.patient_ids, age=d.extras["age"], y_true=d.extras["y_true"])
    per_patient = frame.groupby("pid").nunique()
    assert len(per_patient) == 100
    assert (per_patient[["sex", "age", "race", "y_true"]] == 1).all().all()
    assert (frame.groupby("pid").size() == 3).all()


def test_check_reports_bad_parameters() -> None:
    loader = SyntheticEmbeddings(entanglement=1.0, prevalence=0.9, label_group_correlation=0.4)
    problems = loader.check(Path("."))
    assert any("entanglement" in p for p in problems)
    assert any("P(y|M)" in p for p in problems)
    with pytest.raises(DataError, match="entanglement"):
        loader.load()
    assert SyntheticEmbeddings().check(Path(".")) == []


def test_registered_and_conformant() -> None:
    assert load_plugins(autoload=False).datasets.get("synthetic_embeddings") is SyntheticEmbeddings
    check_plugin(SyntheticEmbeddings)


@pytest.mark.parametrize(("correlation", "low", "high"), [(0.0, -0.01, 0.01), (0.5, 0.05, 0.2)])
def test_label_sex_correlation_makes_erasure_cost_task_auc(correlation: float, low: float, high: float) -> None:
    """Orthogonal label and sex subspaces (``entanglement: 0``): erasing sex costs task AUC only
    when the prevalence differs by sex (then the sex means differ along the label direction)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from fairaudit.builtin.debiasers import LeaceEraser

    d = SyntheticEmbeddings(n_samples=3000, dim=64, seed=0, entanglement=0.0, group_label_noise={},
                            label_group_correlation=correlation).load()
    assert "label_sex_correlation" in d.meta["ground_truth"]
    tr = np.arange(3000) < 2000
    Z = LeaceEraser(attributes=["sex"]).fit(d.X[tr], d.y[tr], sensitive_features=d.sensitive[tr]).transform(d.X)

    def task_auc(A: np.ndarray) -> float:
        clf = LogisticRegression(max_iter=2000).fit(A[tr], d.y[tr])
        return float(roc_auc_score(d.y[~tr], clf.predict_proba(A[~tr])[:, 1]))

    cost = task_auc(d.X) - task_auc(Z)
    assert low < cost < high, cost
