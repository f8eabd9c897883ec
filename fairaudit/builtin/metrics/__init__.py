"""Built-in metrics plugins: group metrics, attribute probes, attack probes, SCLS and counterfactual quality.

The classes are imported inside the hook so that importing this module stays cheap.
"""

from __future__ import annotations

from fairaudit.hookspecs import hookimpl
from fairaudit.registry import Registry


@hookimpl
def fairaudit_register_metrics(registry: Registry) -> None:
    """Register the built-in metrics."""
    from fairaudit.builtin.metrics.attack_probe import AttackProbe
    from fairaudit.builtin.metrics.attribute_probe import AttributeProbe
    from fairaudit.builtin.metrics.counterfactual_quality import CounterfactualQuality
    from fairaudit.builtin.metrics.counterfactual_sensitivity import CounterfactualSensitivity
    from fairaudit.builtin.metrics.group_metrics import GroupMetrics
    from fairaudit.builtin.metrics.scls import SCLS

    for cls in (GroupMetrics, AttributeProbe, AttackProbe, SCLS, CounterfactualQuality, CounterfactualSensitivity):
        registry.add(cls)
