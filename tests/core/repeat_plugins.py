"""A local debiaser whose output depends on the run's seed (for the ``repeats:`` tests): it keeps a
random half of the features, drawn from the run context's seed, and appends ``<seed>\\n`` to the
``marker`` file at every fit (so a test can count which repeats were trained)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fairaudit import BaseDebiaser, hookimpl


class SeededSubset(BaseDebiaser):
    name = "seeded_subset"

    def __init__(self, marker: str = ""):
        self.marker = marker

    def fit(self, X, y, *, sensitive_features):
        seed = self.run_context().seed
        if self.marker:
            with Path(self.marker).open("a") as fh:
                fh.write(f"{seed}\n")
        n = np.asarray(X).shape[1]
        self.keep_ = np.sort(np.random.default_rng(seed).choice(n, size=max(1, n // 2), replace=False))
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float32)[:, self.keep_]


@hookimpl
def fairaudit_register_debiasers(registry):
    registry.add(SeededSubset)
