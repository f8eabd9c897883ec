"""Static checks of ``compare_with`` on a debiaser or generator entry: it names another arm of
the same audit (any position, earlier or later), never the entry's own arms and never the
baseline (every arm is compared with it already).  Refused before any training, with a "did
you mean" and the entry's line.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from fairaudit.errors import SpecIssue

if TYPE_CHECKING:
    from fairaudit.spec.loader import LoadedSpec
    from fairaudit.spec.models import ArmComponent, AuditSpec


def own_arms(component: ArmComponent) -> list[str]:
    """The arm names an entry produces (a generator: one per evaluation)."""
    names = getattr(component, "arm_names", None)
    return list(names()) if callable(names) else [component.arm_name]


def comparison_pairs(spec: AuditSpec) -> dict[str, str]:
    """``arm -> the arm its entry names in compare_with`` for every arm of the spec's entries
    that set it (each arm of a generator entry is compared with the same arm)."""
    out: dict[str, str] = {}
    for component in [*spec.debiasers, *spec.generators]:
        if component.compare_with is not None:
            out.update(dict.fromkeys(own_arms(component), component.compare_with))
    return out


def compare_with_issues(loaded: LoadedSpec) -> list[SpecIssue]:
    """Every ``compare_with`` naming no arm of the audit, the entry's own arm or the baseline."""
    from fairaudit.spec.loader import issue_at

    spec = loaded.spec
    arms = spec.arm_names()
    issues: list[SpecIssue] = []
    for family in ("debiasers", "generators"):
        for i, component in enumerate(getattr(spec, family)):
            target = component.compare_with
            if target is None:
                continue
            loc = (family, i, "compare_with")
            msg = _problem(target, own_arms(component), arms)
            if msg:
                issues.append(issue_at(loaded, loc, msg))
    return issues


def _problem(target: str, own: list[str], arms: list[str]) -> str:
    if target == "baseline":
        return ("compare_with: 'baseline' is implicit (every arm is compared with the baseline already); "
                "name another debiaser or generator arm, or leave compare_with out")
    if target in own:
        return f"compare_with names this entry's own arm {target!r}: name another arm of the audit"
    if target not in arms:
        others = [a for a in arms if a != "baseline" and a not in own]
        close = difflib.get_close_matches(target, others, n=2, cutoff=0.6)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        return f"compare_with: arm {target!r} is not an arm of this audit (arms: {others}).{hint}"
    return ""
