"""Helpers shared by the built-in metric plugins: attribute sets, JSON-safe numbers, results."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from fairaudit.base import MetricContext
from fairaudit.results import GroupValue, MetricResult
from fairaudit.stats.groups import Groups, encode_groups


def num(x: object) -> float | None:
    """A finite float, or ``None`` for NaN/inf/None (results must be JSON-safe and comparable)."""
    if x is None:
        return None
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def num_list(values: Sequence[object] | np.ndarray) -> list[float | None]:
    return [num(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def attribute_sets(ctx: MetricContext) -> list[list[str]]:
    """Every attribute alone, then every intersection of the spec."""
    return attribute_sets_of(ctx.attributes, ctx.intersections)


def attribute_sets_of(attributes: Sequence[str], intersections: Sequence[Sequence[str]]) -> list[list[str]]:
    """``[[a] for a in attributes]`` followed by every intersection of two or more columns."""
    return [[a] for a in attributes] + [list(c) for c in intersections if len(c) >= 2]


def iter_groups(ctx: MetricContext, missing: str = "group") -> Iterator[Groups]:
    """Encoded groups for each attribute (and intersection) of the context."""
    for cols in attribute_sets(ctx):
        yield encode_groups(ctx.sensitive, cols, missing=missing)  # type: ignore[arg-type]


def group_values(
    groups: Groups,
    n: np.ndarray,
    n_pos: np.ndarray | None,
    value: np.ndarray,
    low: np.ndarray | None,
    high: np.ndarray | None,
    too_small: np.ndarray,
) -> list[GroupValue]:
    """One :class:`GroupValue` per group."""
    out = []
    for i, name in enumerate(groups.names):
        out.append(
            GroupValue(
                attribute=groups.attribute,
                group=name,
                n=int(n[i]),
                n_pos=None if n_pos is None else int(n_pos[i]),
                value=num(value[i]),
                ci_low=None if low is None else num(low[i]),
                ci_high=None if high is None else num(high[i]),
                too_small=bool(too_small[i]),
            )
        )
    return out


def estimated_result(estimate: object, **fields: object) -> MetricResult:
    """A :class:`MetricResult` whose value and CI come from a bootstrap estimate
    (anything with ``value``, ``ci_low`` and ``ci_high``)."""
    return MetricResult(
        value=num(estimate.value),  # type: ignore[attr-defined]
        ci_low=num(estimate.ci_low),  # type: ignore[attr-defined]
        ci_high=num(estimate.ci_high),  # type: ignore[attr-defined]
        **fields,  # type: ignore[arg-type]
    )


def not_applicable(
    metric: str, plugin: str, attribute: str | None, why: str, status: str = "not_applicable"
) -> MetricResult:
    return MetricResult(
        metric=metric,
        plugin=plugin,
        attribute=attribute,
        status=status,  # type: ignore[arg-type]
        notes=[why],
    )
