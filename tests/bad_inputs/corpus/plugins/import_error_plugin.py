"""A local plugin whose import fails: its dependency is not installed."""

import fairaudit_group_center_dependency  # noqa: F401

from fairaudit import BaseDebiaser, hookimpl


class GroupCenter(BaseDebiaser):
    name = "group_center"

    def fit(self, X, y, *, sensitive_features):
        return self

    def transform(self, X):
        return X


@hookimpl
def fairaudit_register_debiasers(registry):
    registry.add(GroupCenter)
