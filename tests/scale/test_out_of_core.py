"""Out-of-core features: lazy row views, memory-mapped subsets, streaming logistic regression,
capped probes and the ``embeddings_npy`` dataset end to end."""

from __future__ import annotations

import hashlib
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fairaudit.base import MetricContext, StatsConfig
from fairaudit.builtin.datasets.embeddings_npy import EmbeddingsNpyDataset
from fairaudit.builtin.metrics._probing import cap_rows, stratified_rows
from fairaudit.builtin.models.logistic import LogisticModel
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError
from fairaudit.outofcore import RowView, iter_row_chunks, update_hash
from fairaudit.testing import check_plugin

RNG_ROWS = np.random.default_rng(1)
ROWS = {
    "all": np.arange(500),
    "sorted subset": np.sort(RNG_ROWS.choice(500, 180, replace=False)),
    "shuffled with repeats": RNG_ROWS.integers(0, 500, 240),
    "empty": np.zeros(0, dtype=np.int64),
}
KEYS = [slice(3, 40, 2), slice(None, None, -1), 5, -1, np.array([3, 1, 3]), (slice(2, 9), 3),
        (4, slice(1, 3)), Ellipsis]


def memmap_of(tmp_path: Path, array: np.ndarray, name: str = "x.npy") -> np.memmap:
    path = tmp_path / name
    np.save(path, array)
    return np.load(path, mmap_mode="r")


@pytest.fixture
def stored(tmp_path: Path) -> tuple[np.ndarray, np.memmap]:
    A = np.random.default_rng(0).normal(size=(500, 6)).astype(np.float32)
    return A, memmap_of(tmp_path, A)


# ---------------------------------------------------------------------- RowView
@pytest.mark.parametrize("which", list(ROWS))
def test_row_view_equals_numpy_indexing(stored: tuple[np.ndarray, np.memmap], which: str) -> None:
    A, M = stored
    rows = ROWS[which]
    view, ref = RowView(M, rows), A[rows]
    assert view.shape == ref.shape and view.dtype == ref.dtype and len(view) == len(ref)
    np.testing.assert_array_equal(np.asarray(view), ref)
    for key in KEYS if len(rows) else [slice(None), Ellipsis]:
        np.testing.assert_array_equal(view[key], ref[key], err_msg=str(key))
    np.testing.assert_array_equal(np.asarray(view.take(np.arange(len(rows))[::3])), ref[::3])
    np.testing.assert_array_equal(np.asarray(pickle.loads(pickle.dumps(view))), ref)
    chunks = list(view.iter_chunks(7))
    assert all(c.dtype == np.float32 and len(c) <= 7 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks) if chunks else np.zeros((0, 6)), ref)


def test_row_view_of_float16_memmap_slice_and_in_memory_source(tmp_path: Path) -> None:
    A = np.random.default_rng(3).normal(size=(300, 5)).astype(np.float16)
    M = memmap_of(tmp_path, A)
    rows = np.array([7, 2, 2, 250])
    np.testing.assert_array_equal(np.asarray(RowView(M, rows)), A[rows])
    np.testing.assert_array_equal(np.asarray(RowView(M[100:200], [0, 99])), A[100:200][[0, 99]])
    np.testing.assert_array_equal(np.asarray(RowView(A, rows)), A[rows])
    np.testing.assert_array_equal(np.asarray(RowView(M), dtype=np.float32), A.astype(np.float32))
    with pytest.raises(ValueError):
        np.asarray(RowView(M), copy=False)
    with pytest.raises(IndexError):
        RowView(M, [300])


def test_hash_and_chunks_match_in_memory(stored: tuple[np.ndarray, np.memmap]) -> None:
    A, M = stored
    ours, ref = hashlib.sha256(), hashlib.sha256()
    update_hash(ours, RowView(M, ROWS["sorted subset"]), chunk_rows=17)
    ref.update(np.ascontiguousarray(A[ROWS["sorted subset"]]).tobytes())
    assert ours.hexdigest() == ref.hexdigest()
    np.testing.assert_array_equal(np.concatenate(list(iter_row_chunks(A, 64))), A)


def test_subset_of_memmap_is_a_lazy_view(stored: tuple[np.ndarray, np.memmap]) -> None:
    A, M = stored
    n = len(A)
    data = AuditDataset(name="m", y=np.arange(n) % 2, sensitive=pd.DataFrame({"sex": np.array(["F", "M"])[
        np.arange(n) % 2]}), patient_ids=np.arange(n), X=M)
    rows = ROWS["sorted subset"]
    sub = data.subset(rows)
    assert isinstance(sub.X, RowView)
    np.testing.assert_array_equal(np.asarray(sub.X), A[rows])
    again = sub.subset(np.arange(0, len(rows), 2))
    assert isinstance(again.X, RowView)
    np.testing.assert_array_equal(np.asarray(again.X), A[rows][::2])
    np.testing.assert_array_equal(again.index, rows[::2])
    in_memory = AuditDataset(name="a", y=data.y, sensitive=data.sensitive, patient_ids=data.patient_ids, X=A)
    assert type(in_memory.subset(rows).X) is np.ndarray


# ---------------------------------------------------------------------- streaming logistic
def logistic_problem(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Known truth: y ~ Bernoulli(sigmoid(X w + b)) with unequal feature scales."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, d) + rng.normal(size=d)
    w = rng.normal(size=d) / np.sqrt(d) * 3.0
    logit = (X - X.mean(0)) / X.std(0) @ w - 0.8
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return X.astype(np.float32), y


def test_streaming_logistic_matches_sklearn_auc(tmp_path: Path) -> None:
    X, y = logistic_problem(6000, 40, seed=4)
    train, test = np.arange(4000), np.arange(4000, 6000)
    M = memmap_of(tmp_path, X)
    exact = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X[train], y[train])
    auc_exact = roc_auc_score(y[test], exact.predict_proba(X[test])[:, 1])
    model = LogisticModel(stream_chunk_rows=1000)
    assert model.streams(RowView(M, train)) and not model.streams(X)
    model.fit(RowView(M, train), y[train])
    assert model.pipeline_ is None
    scores = model.predict_proba(RowView(M, test))
    assert scores.shape == (len(test),) and np.all((scores > 0) & (scores < 1))
    assert abs(roc_auc_score(y[test], scores) - auc_exact) < 0.02
    np.testing.assert_allclose(model.predict_proba(X[test]), scores, rtol=1e-5)
    twin = LogisticModel(stream_chunk_rows=1000).fit(RowView(M, train), y[train])
    np.testing.assert_array_equal(twin.predict_proba(RowView(M, test)), scores)  # deterministic


def test_in_memory_logistic_is_still_exact_sklearn() -> None:
    X, y = logistic_problem(800, 10, seed=5)
    ours = LogisticModel(C=0.5).fit(X, y).predict_proba(X)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000)).fit(X, y)
    np.testing.assert_array_equal(ours, ref.predict_proba(X)[:, 1])


def test_logistic_conformance_with_streaming_params() -> None:
    check_plugin(LogisticModel)


# ---------------------------------------------------------------------- capped probes
def test_stratified_rows_keep_group_shares_and_small_groups() -> None:
    strata = np.repeat([0, 1, 2], [9000, 950, 50])
    rows = stratified_rows(strata, 1000, np.random.default_rng(0))
    assert len(rows) == 1000 and len(np.unique(rows)) == 1000 and np.all(np.diff(rows) > 0)
    counts = np.bincount(strata[rows])
    assert counts[2] == 50 and counts[1] == 100 + round(850 * 750 / 9750) and counts.sum() == 1000


def test_cap_rows_reads_only_max_rows(stored: tuple[np.ndarray, np.memmap]) -> None:
    A, M = stored
    n = len(A)
    sex = np.where(np.arange(n) < 400, "F", "M").astype(object)
    ctx = MetricContext(y_true=np.arange(n) % 2, sensitive=pd.DataFrame({"sex": sex}),
                        patient_ids=np.arange(n), attributes=["sex"], features=RowView(M),
                        stats=StatsConfig(seed=1), extras={"age": np.arange(n, dtype=float)})
    small, notes = cap_rows(ctx, 200, "attribute_probe")
    assert isinstance(small.features, np.ndarray) and small.features.shape == (200, 6)
    kept = small.extras["age"].astype(int)
    np.testing.assert_array_equal(small.features, A[kept])
    np.testing.assert_array_equal(small.sensitive["sex"].to_numpy(), sex[kept])
    assert (small.sensitive["sex"] == "M").sum() == 100  # 100 kept per group, then shares of the rest
    assert notes and "200 of 500 rows" in notes[0] and "stratified by sex" in notes[0]
    same, none = cap_rows(ctx, None, "attribute_probe")
    assert not none and isinstance(same.features, np.ndarray) and len(same.features) == n


# ---------------------------------------------------------------------- embeddings_npy
def write_embeddings(folder: Path, n: int = 3000, d: int = 64, seed: int = 0) -> tuple[Path, Path]:
    """Embeddings with a sex signal (dims 0-3) and a label signal (dims 4-7), plus metadata CSV."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    y = (rng.random(n) < 0.35).astype(int)
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[:, :4] += 1.2 * (sex == "M")[:, None]
    X[:, 4:8] += 1.0 * y[:, None]
    npy, csv = folder / "emb.npy", folder / "meta.csv"
    np.save(npy, X)
    pd.DataFrame({"patient": [f"p{i // 2}" for i in range(n)], "sex": sex, "label": y}).to_csv(csv, index=False)
    return npy, csv


SPEC = textwrap.dedent("""\
    name: out_of_core
    seed: 1
    dataset:
      name: embeddings_npy
      params: {features: emb.npy, metadata: meta.csv, target: label, sensitive: [sex], patient_id: patient}
    attributes: [sex]
    model: {name: logistic}
    metrics:
      - group_metrics
      - {name: attribute_probe, params: {probes: [linear], cv_folds: 3, max_rows: 600, shuffled_baseline: false}}
    statistics: {n_boot: 100, n_permutations: 100, min_group_size: 10}
    report: {formats: [html]}
    """)


def test_end_to_end_audit_finds_the_injected_signal(tmp_path: Path) -> None:
    from fairaudit.audit.runner import run_audit

    write_embeddings(tmp_path)
    (tmp_path / "spec.yaml").write_text(SPEC)
    outcome = run_audit(tmp_path / "spec.yaml", output_dir=tmp_path / "out")
    baseline = outcome.result.arms[0]
    assert baseline.status == "ok", baseline.error
    probe = [m for m in baseline.metrics if m.metric == "attribute_probe_auc"]
    assert len(probe) == 1 and probe[0].value is not None and probe[0].value > 0.85, probe
    assert any("600 of 900 rows" in note for note in probe[0].notes), probe[0].notes
    auc = [m for m in baseline.metrics if m.metric == "roc_auc" and m.value is not None]
    assert auc and auc[0].value > 0.75


def test_embeddings_npy_loads_memory_mapped(tmp_path: Path) -> None:
    write_embeddings(tmp_path, n=200, d=8)
    loader = EmbeddingsNpyDataset(features="emb.npy", metadata="meta.csv", target="label", sensitive=["sex"],
                                  patient_id="patient").resolve(tmp_path)
    assert loader.check(tmp_path) == []
    data = loader.load()
    assert isinstance(data.X, np.memmap) and data.X.shape == (200, 8)
    assert data.patient_ids[3] == "p1" and set(data.sensitive["sex"]) == {"F", "M"}
    check_plugin(EmbeddingsNpyDataset)


def test_row_count_mismatch_names_both_files(tmp_path: Path) -> None:
    npy, csv = write_embeddings(tmp_path, n=100, d=4)
    meta = pd.read_csv(csv)
    meta.iloc[:95].to_csv(csv, index=False)
    meta.iloc[:90].to_parquet(tmp_path / "meta.parquet")
    for path, n_meta in ((csv, 95), (tmp_path / "meta.parquet", 90)):
        loader = EmbeddingsNpyDataset(features=str(npy), metadata=str(path), target="label", sensitive=["sex"])
        with pytest.raises(DataError) as info:
            loader.load()
        message = str(info.value)
        assert str(npy) in message and str(path) in message
        assert "100 rows" in message and f"{n_meta} rows" in message
    problems = EmbeddingsNpyDataset(features=str(npy), metadata=str(tmp_path / "meta.parquet"), target="label",
                                    sensitive=["sex"]).check(tmp_path)
    assert len(problems) == 1 and "90 rows" in problems[0]


def test_non_2d_and_non_float_arrays_are_clear_errors(tmp_path: Path) -> None:
    _, csv = write_embeddings(tmp_path, n=50, d=4)
    for name, array, words in [("flat.npy", np.zeros(50, np.float32), "2-D"),
                               ("cube.npy", np.zeros((50, 2, 2), np.float32), "2-D"),
                               ("ints.npy", np.zeros((50, 4), np.int64), "floating point")]:
        np.save(tmp_path / name, array)
        loader = EmbeddingsNpyDataset(features=str(tmp_path / name), metadata=str(csv), target="label",
                                      sensitive=["sex"])
        with pytest.raises(DataError, match=words) as info:
            loader.load()
        assert name in str(info.value)
        assert any(words in p for p in loader.check(tmp_path))
    loader = EmbeddingsNpyDataset(features=str(tmp_path / "emb.npy"), metadata=str(csv), target="label",
                                  sensitive=["sexx"])
    assert "Did you mean 'sex'" in loader.check(tmp_path)[0]


def test_nan_embeddings_name_the_row(tmp_path: Path) -> None:
    npy, csv = write_embeddings(tmp_path, n=60, d=4)
    X = np.load(npy)
    X[41, 2] = np.nan
    np.save(npy, X)
    with pytest.raises(DataError, match="row 41"):
        EmbeddingsNpyDataset(features=str(npy), metadata=str(csv), target="label", sensitive=["sex"]).load()
