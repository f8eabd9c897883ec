"""Plugin report content as typed blocks.

Debiasers and generators describe what they learned with ``report_blocks()``: a list of
:class:`~fairaudit.results.TableBlock`, :class:`~fairaudit.results.TextBlock`,
:class:`~fairaudit.results.ImageBlock` or :class:`~fairaudit.results.CurveBlock`, or the
equivalent JSON-safe dicts with a ``kind`` key (``table``, ``text``, ``image_grid``, ``curve``).
:func:`to_blocks` turns either into validated blocks; content that cannot be read becomes a
short text block and a warning, so one odd plugin never costs a trained arm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from fairaudit.results import Block, TextBlock

_ADAPTER: TypeAdapter[Block] = TypeAdapter(Block)
KINDS = ("table", "text", "image_grid", "curve")
#: Older spellings of block keys, still accepted from plugins.
_ALIASES = {"note": "caption", "image": "path", "x_label": "xlabel", "y_label": "ylabel"}


def _series(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Curve series from ``{name: ys}`` or ``[{"name", "x", "y"}]``, with a shared ``x``."""
    shared = raw.get("x")
    series = raw.get("series") or []
    items = series.items() if isinstance(series, Mapping) else (
        (s.get("name", f"series {i + 1}"), s) for i, s in enumerate(series) if isinstance(s, Mapping))
    out = []
    for name, ys in items:
        y = list(ys.get("y") or []) if isinstance(ys, Mapping) else list(ys or [])
        x = (ys.get("x") if isinstance(ys, Mapping) else None) or shared or list(range(len(y)))
        out.append({"name": str(name), "x": list(x), "y": y})
    return out


def _normalised(raw: Mapping[str, Any]) -> dict[str, Any]:
    data = {_ALIASES.get(k, k): v for k, v in raw.items()}
    if data.get("kind") == "curve":
        data["series"] = _series(raw)
        data.pop("x", None)
    return data


def to_block(raw: Any) -> Block:
    """One block from a block object or a plugin dict; raises ``ValueError`` when unreadable."""
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if not isinstance(raw, Mapping):
        raise ValueError(f"a block must be a mapping with a 'kind', not {type(raw).__name__}")
    if raw.get("kind") not in KINDS:
        raise ValueError(f"block kind {raw.get('kind')!r} is not supported (kinds: {', '.join(KINDS)})")
    try:
        return _ADAPTER.validate_python(_normalised(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"block {raw.get('title') or raw.get('kind')!r}: {where}: {first['msg']}") from None


def to_blocks(raw: Iterable[Any], owner: str) -> tuple[list[Block], list[str]]:
    """Blocks from ``owner``'s report content, and a warning for each one that could not be read
    (shown as a short text block in its place)."""
    blocks: list[Block] = []
    warnings: list[str] = []
    for item in raw or []:
        try:
            blocks.append(to_block(item))
        except ValueError as exc:
            warnings.append(f"{owner}: report content not shown: {exc}")
            blocks.append(TextBlock(title="Content not shown", text=f"{exc}; see result.json and the log."))
    return blocks, warnings
