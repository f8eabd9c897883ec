"""The conformance kit passes on every built-in metric (with each ``get_test_params()`` set)."""

from __future__ import annotations

import importlib.util

import pytest

from fairaudit.builtin.metrics.attack_probe import AttackProbe
from fairaudit.builtin.metrics.attribute_probe import AttributeProbe
from fairaudit.builtin.metrics.counterfactual_quality import CounterfactualQuality
from fairaudit.builtin.metrics.counterfactual_sensitivity import CounterfactualSensitivity
from fairaudit.builtin.metrics.group_metrics import GroupMetrics
from fairaudit.builtin.metrics.scls import SCLS
from fairaudit.testing import checks_for


def _needs_images(cls: type) -> bool:
    return "counterfactuals" in cls.requires


BUILTIN_METRICS = [GroupMetrics, AttributeProbe, AttackProbe, SCLS, CounterfactualQuality, CounterfactualSensitivity]


def test_every_registered_builtin_metric_is_checked() -> None:
    from fairaudit.plugins import load_plugins

    builtin = {name for name in load_plugins(autoload=False).registry("metrics").names()}
    assert builtin <= {cls.name for cls in BUILTIN_METRICS}


@pytest.mark.parametrize("cls", BUILTIN_METRICS, ids=lambda c: c.name)
def test_builtin_metric_conformance(cls: type) -> None:
    if (
        _needs_images(cls)
        and importlib.util.find_spec("fairaudit.builtin.datasets.synthetic_cxr") is None
    ):
        pytest.skip("synthetic_cxr dataset (conformance images) not available yet")
    for check in checks_for(cls):
        check(cls)
