"""Static checks of a spec's ``thresholds``: each names a metric result some metric of the spec
declares (``outputs()``), an attribute or intersection of the spec, and arms the audit will have.

A misspelled threshold would otherwise pass the CI gate unjudged, so ``validate`` and ``run``
refuse it before any training, with a "did you mean".
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import TYPE_CHECKING, Any

from fairaudit.errors import SpecIssue

if TYPE_CHECKING:
    from fairaudit.plugins import PluginSet
    from fairaudit.spec.loader import LoadedSpec


def declared_outputs(loaded: LoadedSpec, plugins: PluginSet) -> list[str] | None:
    """Names (``*`` patterns allowed) every metric of the spec declares, or ``None`` when some
    metric declares nothing (its names cannot be checked)."""
    names: list[str] = []
    for comp in loaded.spec.metrics:
        try:
            metric = plugins.registry("metrics").create(comp.name, comp.params)
        except Exception:  # unknown plugin or bad params: reported by the component checks
            return None
        outputs = metric.outputs()
        if not outputs:
            return None
        names += [o.name for o in outputs]
    return names


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=2, cutoff=0.6)
    return f" Did you mean {' or '.join(map(repr, close))}?" if close else ""


def _issue(loaded: LoadedSpec, loc: tuple[Any, ...], msg: str) -> SpecIssue:
    from fairaudit.spec.loader import issue_at

    return issue_at(loaded, loc, msg)


def threshold_issues(loaded: LoadedSpec, plugins: PluginSet) -> list[SpecIssue]:
    """Every threshold naming a metric, attribute or arm the audit cannot produce."""
    spec = loaded.spec
    issues: list[SpecIssue] = []
    outputs = declared_outputs(loaded, plugins) if spec.thresholds else None
    attributes = [*spec.attributes, *("&".join(c) for c in spec.intersections)]
    arms = spec.arm_names()
    for name, rule in spec.thresholds.items():
        if outputs is not None and not any(fnmatch.fnmatchcase(name, pattern) for pattern in outputs):
            metrics = ", ".join(c.name for c in spec.metrics)
            issues.append(_issue(loaded, ("thresholds", name),
                                 f"no metric of this spec ({metrics}) produces {name!r}.{_hint(name, outputs)} "
                                 "`fairaudit schema --format markdown` lists the names each metric produces"))
        if rule.attribute is not None and rule.attribute not in attributes:
            issues.append(_issue(loaded, ("thresholds", name, "attribute"),
                                 f"attribute {rule.attribute!r} is not audited (attributes and intersections: "
                                 f"{attributes}).{_hint(rule.attribute, attributes)}"))
        for i, arm in enumerate(rule.arms or []):
            if arm not in arms:
                issues.append(_issue(loaded, ("thresholds", name, "arms", i),
                                     f"arm {arm!r} is not an arm of this audit ({arms}).{_hint(arm, arms)}"))
    return issues
