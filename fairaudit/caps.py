"""Bounds on what an audit writes and prints, whatever the data: a sensitive column with a
distinct value on every row must not turn into 100,000 warnings, a 20 MB ``result.json`` or a
report that cannot be rendered.

* per-group tables (the dataset summary, a metric's ``per_group``, the report's tables) keep the
  :data:`MAX_GROUPS` largest groups and say how many groups and rows were left out;
* warnings of one kind are aggregated by their producer (one line with a count and the first
  :data:`MAX_NAMES` names, see :func:`examples`); identical warnings are kept once and at most
  :data:`MAX_WARNINGS` are kept (:func:`bounded_warnings`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

#: Groups of one attribute listed in a per-group table (the largest ones).
MAX_GROUPS = 50
#: Names quoted in an aggregated warning ("e.g. 'a', 'b', ... and 99,995 more").
MAX_NAMES = 5
#: Warnings kept in ``result.json`` and printed (identical ones count once).
MAX_WARNINGS = 100


def examples(names: Sequence[Any], limit: int = MAX_NAMES) -> str:
    """``a, b, c`` or ``a, b, c, d, e and 12 more``: the first ``limit`` items (as ``str``; quote
    names with ``repr`` first)."""
    shown = ", ".join(str(n) for n in names[:limit])
    more = len(names) - limit
    return f"{shown} and {more:,} more" if more > 0 else shown


def largest(rows: list[dict[str, Any]], limit: int = MAX_GROUPS, size: str = "n") -> tuple[list[dict[str, Any]], int]:
    """The ``limit`` rows of largest ``size`` in their original order, and how many were left out."""
    if len(rows) <= limit:
        return rows, 0
    order = sorted(range(len(rows)), key=lambda i: (-(rows[i].get(size) or 0), i))[:limit]
    return [rows[i] for i in sorted(order)], len(rows) - limit


def bounded_warnings(messages: Iterable[str], limit: int = MAX_WARNINGS) -> list[str]:
    """``messages`` without repeats, at most ``limit`` (the last line then says how many more)."""
    unique = list(dict.fromkeys(str(m) for m in messages))
    if len(unique) <= limit:
        return unique
    rest = len(unique) - (limit - 1)
    return [*unique[: limit - 1], f"{rest:,} further warning(s) not kept (at most {limit} are kept; the first "
                                  f"{limit - 1} are above)"]
