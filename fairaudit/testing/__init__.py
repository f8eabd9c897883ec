"""Conformance kit for plugin authors, in the spirit of scikit-learn's ``check_estimator``.

>>> from fairaudit.testing import check_debiaser
>>> check_debiaser(MyDebiaser)            # raises AssertionError naming the failed check

In pytest, one test id per check::

    @parametrize_with_checks([MyDebiaser])
    def test_conformance(plugin_class, check):
        check(plugin_class)
"""

from fairaudit.testing.checks import (
    check_debiaser,
    check_generator,
    check_metric,
    check_model,
    check_plugin,
    checks_for,
    parametrize_with_checks,
)

__all__ = [
    "check_debiaser",
    "check_generator",
    "check_metric",
    "check_model",
    "check_plugin",
    "checks_for",
    "parametrize_with_checks",
]
