"""Logistic regression on features, standardised inputs: exact (scikit-learn) in memory, streaming
(chunked minibatch Adam) for memory-mapped or very large feature matrices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from fairaudit.base import BaseModel
from fairaudit.outofcore import DEFAULT_CHUNK_ROWS, RowView, is_lazy, iter_row_chunks, read_rows

#: The streaming fit takes at least this many optimiser steps (small data: more epochs).
MIN_STREAM_STEPS = 500
#: Consecutive rows read together when streaming; a chunk mixes segments from all over the data.
SEGMENT_ROWS = 256
#: Lazy training data up to this size (as float32) is read once and kept in memory for the epochs.
CACHE_BYTES = 256 * 1024**2


class LogisticModel(BaseModel):
    """L2-regularised logistic regression on standardised features.

    In-memory features are fitted exactly with scikit-learn (lbfgs).  Memory-mapped or lazy
    features (``embeddings_npy``), and arrays with more than ``max_in_memory_rows`` rows, are
    fitted by streaming: feature means and SDs from one chunked pass, then ``stream_epochs``
    epochs of minibatch Adam on the same objective (mean log-loss + ``1 / (2 C n)`` ||w||²),
    reading ``stream_chunk_rows`` rows at a time (segments of consecutive rows drawn from all
    over the data, shuffled, seeded by the run's seed, so deterministic).  Scores are streamed
    in chunks too.

    Parameters
    ----------
    C, max_iter, class_weight:
        Inverse L2 strength, lbfgs iterations (in-memory fit), ``"balanced"`` class weights.
    max_in_memory_rows:
        In-memory arrays with more rows are fitted by streaming (``None``: never).
    stream_epochs, stream_batch_size, stream_learning_rate, stream_chunk_rows:
        Streaming fit: passes over the data (raised so that at least 500 steps are taken),
        minibatch size, Adam's initial step size (decayed linearly to a tenth), rows per chunk.
    """

    name = "logistic"
    description = "Logistic regression (scikit-learn; streaming for memory-mapped features) on standardised features."

    def __init__(
        self,
        *,
        C: float = 1.0,
        max_iter: int = 1000,
        class_weight: str | None = None,
        max_in_memory_rows: int | None = 1_000_000,
        stream_epochs: int = 3,
        stream_batch_size: int = 1024,
        stream_learning_rate: float = 1e-2,
        stream_chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ):
        self.C = C
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.max_in_memory_rows = max_in_memory_rows
        self.stream_epochs = stream_epochs
        self.stream_batch_size = stream_batch_size
        self.stream_learning_rate = stream_learning_rate
        self.stream_chunk_rows = stream_chunk_rows

    def streams(self, X: Any) -> bool:
        """Whether ``fit`` trains on ``X`` by streaming (lazy/memory-mapped or too many rows)."""
        too_big = self.max_in_memory_rows is not None and len(X) > self.max_in_memory_rows
        return is_lazy(X) or too_big

    def fit(self, X: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None) -> Self:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.streams(X):
            self.pipeline_ = None
            self.stream_ = self._fit_streaming(X, y, sample_weight)
            return self
        self.stream_ = None
        self.pipeline_ = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight=self.class_weight),
        )
        self.pipeline_.fit(_flat(X), y, logisticregression__sample_weight=sample_weight)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.pipeline_ is None:
            return self.stream_.predict(X, self.stream_chunk_rows)
        if is_lazy(X):
            return np.concatenate([self.pipeline_.predict_proba(block)[:, 1]
                                   for block in iter_row_chunks(X, self.stream_chunk_rows)])
        return self.pipeline_.predict_proba(_flat(X))[:, 1]

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"C": 0.1}, {"max_in_memory_rows": 10, "stream_epochs": 2, "stream_chunk_rows": 64}]

    # ------------------------------------------------------------------ streaming
    def _fit_streaming(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> StreamingLogistic:
        y = np.asarray(y).astype(np.float64).reshape(-1)
        if len(y) != len(X):
            raise ValueError(f"logistic: X has {len(X)} rows but y has {len(y)}")
        if len(np.unique(y)) < 2:
            raise ValueError("logistic: the target needs both classes 0 and 1")
        weights = _sample_weights(y, sample_weight, self.class_weight)
        mean, scale = feature_moments(X, self.stream_chunk_rows)
        if is_lazy(X) and len(X) * len(mean) * 4 <= CACHE_BYTES:
            X = read_rows(X)  # small: one read instead of one per epoch
        fit = StreamingLogistic(mean=mean, scale=scale, coef=np.zeros(len(mean)), intercept=0.0)
        fit.train(X, y, weights, C=self.C, epochs=self.stream_epochs, batch_size=self.stream_batch_size,
                  learning_rate=self.stream_learning_rate, chunk_rows=self.stream_chunk_rows,
                  seed=self.run_context().seed)
        return fit


@dataclass
class StreamingLogistic:
    """Standardisation and weights of a logistic regression trained over row chunks."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, block: np.ndarray) -> np.ndarray:
        """Decision values of raw rows ``block`` (standardised first, as in training)."""
        Z = self._standardised(np.array(block, dtype=np.float32, copy=True))
        return (Z @ self.coef.astype(np.float32)).astype(np.float64) + self.intercept

    def predict(self, X: Any, chunk_rows: int) -> np.ndarray:
        """Positive-class probabilities of every row of ``X``, read chunk by chunk."""
        with _one_blas_thread():
            parts = [_sigmoid(self.logits(block)) for block in iter_row_chunks(X, chunk_rows)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def train(self, X: Any, y: np.ndarray, weights: np.ndarray, *, C: float, epochs: int, batch_size: int,
              learning_rate: float, chunk_rows: int, seed: int) -> None:
        """Minibatch Adam on mean weighted log-loss + ``||w||² / (2 C sum(weights))``."""
        n = len(y)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x106157,)))
        steps_per_epoch = max(1, -(-n // batch_size))
        epochs = max(epochs, -(-MIN_STREAM_STEPS // steps_per_epoch))
        total = epochs * steps_per_epoch
        prevalence = float(np.clip(np.average(y, weights=weights), 1e-6, 1 - 1e-6))
        self.intercept = float(np.log(prevalence / (1 - prevalence)))
        adam = _Adam(len(self.coef) + 1, learning_rate, total)
        theta = np.concatenate([self.coef, [self.intercept]])
        norm = n / float(weights.sum())
        l2 = 1.0 / (C * float(weights.sum()))
        with _one_blas_thread():
            for _ in range(epochs):
                for rows in _chunk_orders(n, chunk_rows, rng):
                    Z = self._standardised(read_rows(X, rows))
                    for batch in np.array_split(rng.permutation(len(rows)), max(1, -(-len(rows) // batch_size))):
                        grad = _gradient(np.take(Z, batch, axis=0), y[rows[batch]], weights[rows[batch]] * norm,
                                         theta, l2)
                        theta = adam.step(theta, grad)
        self.coef, self.intercept = theta[:-1].copy(), float(theta[-1])

    def _standardised(self, block: np.ndarray) -> np.ndarray:
        """``block`` standardised in place (float32)."""
        np.subtract(block, self.mean.astype(np.float32), out=block)
        np.multiply(block, (1.0 / self.scale).astype(np.float32), out=block)
        return block


class _Adam:
    """Adam with a step size decayed linearly to a tenth over ``total`` steps."""

    def __init__(self, size: int, learning_rate: float, total: int):
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.t = 0
        self.lr = learning_rate
        self.total = max(1, total)

    def step(self, theta: np.ndarray, grad: np.ndarray, beta1: float = 0.9, beta2: float = 0.999) -> np.ndarray:
        self.t += 1
        self.m = beta1 * self.m + (1 - beta1) * grad
        self.v = beta2 * self.v + (1 - beta2) * grad * grad
        m_hat = self.m / (1 - beta1**self.t)
        v_hat = self.v / (1 - beta2**self.t)
        lr = self.lr * (1.0 - 0.9 * min(1.0, self.t / self.total))
        return theta - lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def _gradient(Z: np.ndarray, y: np.ndarray, w: np.ndarray, theta: np.ndarray, l2: float) -> np.ndarray:
    """Gradient of ``mean(w * logloss) + l2/2 ||coef||²`` on standardised rows ``Z``."""
    coef = theta[:-1].astype(np.float32)
    p = _sigmoid((Z @ coef).astype(np.float64) + theta[-1])
    r = (p - y) * w / len(y)
    grad = np.empty_like(theta)
    grad[:-1] = (Z.T @ r.astype(np.float32)).astype(np.float64) + l2 * theta[:-1]
    grad[-1] = r.sum()
    return grad


def _chunk_orders(n: int, chunk_rows: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch: row positions in chunks, each chunk a sorted union of random row segments."""
    starts = rng.permutation(np.arange(0, n, SEGMENT_ROWS))
    per_chunk = max(1, chunk_rows // SEGMENT_ROWS)
    chunks = []
    for i in range(0, len(starts), per_chunk):
        seg = np.sort(starts[i:i + per_chunk])
        chunks.append(np.concatenate([np.arange(s, min(s + SEGMENT_ROWS, n)) for s in seg]))
    return chunks


def feature_moments(X: Any, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and SD (population, zero SD -> 1, as StandardScaler) in one chunked pass."""
    count, mean, m2 = 0, None, None
    for block in iter_row_chunks(X, chunk_rows, dtype=np.float64):
        k = len(block)
        b_mean = block.mean(0)
        b_m2 = ((block - b_mean) ** 2).sum(0)
        if mean is None or m2 is None:
            count, mean, m2 = k, b_mean, b_m2
            continue
        delta = b_mean - mean
        total = count + k
        mean = mean + delta * k / total
        m2 = m2 + b_m2 + delta**2 * count * k / total
        count = total
    assert mean is not None and m2 is not None, "no rows to fit"
    scale = np.sqrt(m2 / count)
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
    return mean, scale


def _sample_weights(y: np.ndarray, sample_weight: np.ndarray | None, class_weight: str | None) -> np.ndarray:
    """Per-row weights: ``sample_weight`` times balanced class weights when asked for."""
    weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).copy()
    if class_weight == "balanced":
        for c in (0.0, 1.0):
            weights[y == c] *= len(y) / (2.0 * max(1, int((y == c).sum())))
    elif class_weight is not None:
        raise ValueError(f"logistic: class_weight must be None or 'balanced', got {class_weight!r}")
    return weights


def _one_blas_thread() -> Any:
    """Single-threaded BLAS: the streaming fit's small matrix-vector products are memory-bound,
    and threaded BLAS on shared cores spins (measured 50x slower under load)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _flat(X: np.ndarray | RowView) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X.reshape(len(X), -1)
