"""Testing kit for plugin authors: conformance checks, small fixtures and run helpers.

The conformance kit, in the spirit of scikit-learn's ``check_estimator``:

>>> from fairaudit.testing import check_debiaser
>>> check_debiaser(MyDebiaser)            # raises AssertionError naming the failed check

In pytest, one test id per check::

    @parametrize_with_checks([MyDebiaser])
    def test_conformance(plugin_class, check):
        check(plugin_class)

Submodules (public, documented in docs/architecture.md):

- :mod:`fairaudit.testing.data`: ``tiny_features()`` / ``tiny_images()``, seeded datasets of a
  few hundred rows with known injected bias (what the checks run on).
- :mod:`fairaudit.testing.report_fixtures`: ``demo_result(run_dir)``, a realistic
  :class:`~fairaudit.results.AuditResult` (two arms, a failed arm, plugin sections, verdicts) for
  testing report sections without training anything.
- :mod:`fairaudit.testing.runs`: ``cli(...)`` runs the command line in-process; ``run_dirs``,
  ``only_run_dir`` and ``load_result`` find and read run folders.
- :mod:`fairaudit.testing.shortcut_ladder`: ``build_ladder(...)``, classifiers trained at graded
  device-shortcut strengths with oracle-measured reliance, and degraded / independent
  counterfactual editors, for validating shortcut metrics (SCLS) by rank correlation.
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
