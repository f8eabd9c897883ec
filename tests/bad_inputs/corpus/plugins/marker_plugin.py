"""A local plugin that creates ``PWNED-plugin`` in the corpus folder when it is imported: the
proof, if that file ever exists, that ``fairaudit validate`` executed a spec's plugin file."""

from pathlib import Path

import numpy as np

from fairaudit import BaseDebiaser, hookimpl

(Path(__file__).resolve().parent.parent / "PWNED-plugin").write_text("a local plugin was imported")


class Marker(BaseDebiaser):
    name = "marker_debiaser"

    def fit(self, X, y, *, sensitive_features):
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float32)


@hookimpl
def fairaudit_register_debiasers(registry):
    registry.add(Marker)
