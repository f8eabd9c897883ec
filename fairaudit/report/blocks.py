"""Figures collected while building a report, and plugin ``sections`` turned into template blocks.

A section is a dict with a ``kind``: ``table``, ``text``, ``image_grid`` or ``curve`` (the
shapes plugins emit are documented in :func:`section_block`).  Anything else becomes a small
notice instead of an error, so one odd plugin cannot break a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from fairaudit.report import figures
from fairaudit.report.fmt import cell, slug
from fairaudit.report.safety import clean_data_uri, inline_image

MAX_TABLE_ROWS = 200


@dataclass
class FigureSink:
    """Collects the SVG figures of one report: file name -> SVG text, in creation order."""

    files: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, svg: str, *, title: str = "", caption: str = "") -> dict[str, Any]:
        """Register ``svg`` under a unique ``figures/<name>.svg``; returns a template block."""
        base = slug(name, 60)
        stem, i = base, 2
        while f"{stem}.svg" in self.files:
            stem, i = f"{base}-{i}", i + 1
        fname = f"{stem}.svg"
        self.files[fname] = svg
        inline = Markup(figures.inline_svg(svg, prefix=f"f{len(self.files)}"))
        return {
            "type": "figure",
            "svg": inline,
            "file": f"figures/{fname}",
            "title": title,
            "caption": caption,
        }


def notice(title: str, text: str) -> dict[str, Any]:
    return {"type": "notice", "title": title, "text": text}


def _caption(section: dict[str, Any]) -> str:
    return str(section.get("caption") or section.get("note") or "")


def _table(section: dict[str, Any]) -> dict[str, Any]:
    columns = [str(c) for c in section.get("columns") or []]
    raw_rows = section.get("rows") or []
    rows: list[list[str]] = []
    for raw in raw_rows[:MAX_TABLE_ROWS]:
        if isinstance(raw, dict):
            rows.append([cell(raw.get(c)) for c in columns])
        elif isinstance(raw, (list, tuple)):
            rows.append([cell(v) for v in raw])
        else:
            rows.append([cell(raw)])
    width = max([len(columns), *(len(r) for r in rows)], default=0)
    columns += [""] * (width - len(columns))
    rows = [r + [""] * (width - len(r)) for r in rows]
    caption = _caption(section)
    if len(raw_rows) > MAX_TABLE_ROWS:
        caption = f"{caption} (first {MAX_TABLE_ROWS} of {len(raw_rows)} rows shown)".strip()
    return {
        "type": "table",
        "title": str(section.get("title") or ""),
        "columns": columns,
        "rows": rows,
        "caption": caption,
        "wide": width > 6,
    }


def _curve_series(section: dict[str, Any]) -> list[tuple[str, list[Any], list[Any]]]:
    series = section.get("series") or {}
    shared_x = section.get("x")
    out: list[tuple[str, list[Any], list[Any]]] = []
    if isinstance(series, dict):
        for name, ys in series.items():
            if isinstance(ys, dict):
                out.append(
                    (str(name), list(ys.get("x") or shared_x or []), list(ys.get("y") or []))
                )
            else:
                ys = list(ys or [])
                out.append((str(name), list(shared_x or range(len(ys))), ys))
    elif isinstance(series, list):
        for i, s in enumerate(series):
            if isinstance(s, dict):
                ys = list(s.get("y") or [])
                out.append(
                    (
                        str(s.get("name", f"series {i + 1}")),
                        list(s.get("x") or shared_x or range(len(ys))),
                        ys,
                    )
                )
    return out


def _image(section: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    title = str(section.get("title") or "")
    src = None
    for key in ("image", "path"):
        if isinstance(section.get(key), str):
            src = inline_image(run_dir, section[key])
            if src is None:
                return notice(
                    title or "Image",
                    f"image {section[key]!s} not shown: it is not a PNG/JPEG "
                    "file inside the run folder",
                )
            break
    if src is None and isinstance(section.get("data_uri"), str):
        src = clean_data_uri(section["data_uri"])
        if src is None:
            return notice(
                title or "Image", "embedded image not shown: not a valid PNG/JPEG data URI"
            )
    if src is None:
        return notice(title or "Image", "image section without an image")
    return {
        "type": "image",
        "title": title,
        "src": src,
        "caption": _caption(section),
        "alt": title or "image",
    }


def section_block(section: Any, run_dir: Path, sink: FigureSink, key: str) -> dict[str, Any]:
    """One plugin section as a template block (``key`` names its figure file).

    Shapes: ``{"kind": "table", "title", "columns", "rows", "caption"|"note"}``;
    ``{"kind": "text", "title", "text"}``; ``{"kind": "image_grid", "title", "image"|"path"
    (relative to the run folder)|"data_uri", "caption"}``; ``{"kind": "curve", "title", "x",
    "series": {name: ys} | [{"name", "x", "y"}], "xlabel"|"x_label", "ylabel"|"y_label"}``.
    """
    if not isinstance(section, dict):
        return notice(
            "Unreadable section", f"a section of type {type(section).__name__} was skipped"
        )
    kind = section.get("kind")
    title = str(section.get("title") or "")
    if kind == "table":
        return _table(section)
    if kind == "text":
        paragraphs = [p.strip() for p in str(section.get("text") or "").split("\n\n") if p.strip()]
        return {"type": "text", "title": title, "paragraphs": paragraphs}
    if kind == "image_grid":
        return _image(section, run_dir)
    if kind == "curve":
        series = _curve_series(section)
        if not series:
            return notice(title or "Curve", "curve section without data")
        svg = figures.line_figure(
            series,
            title=title,
            xlabel=str(section.get("xlabel") or section.get("x_label") or ""),
            ylabel=str(section.get("ylabel") or section.get("y_label") or ""),
        )
        return sink.add(key, svg, title="", caption=_caption(section))
    return notice(
        title or "Unsupported section",
        f"section kind {kind!r} is not supported by this "
        "version of the report; its content is in result.json",
    )


def artefact_blocks(
    artefacts: dict[str, str], run_dir: Path
) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Image artefacts as image blocks; everything else as (name, path) rows."""
    images, others = [], []
    for name, rel in artefacts.items():
        if str(rel).lower().endswith((".png", ".jpg", ".jpeg")):
            src = inline_image(run_dir, rel)
            if src is not None:
                images.append(
                    {
                        "type": "image",
                        "title": str(name),
                        "src": src,
                        "caption": str(rel),
                        "alt": str(name),
                    }
                )
                continue
            images.append(
                notice(str(name), f"{rel} not shown: not an image file inside the run folder")
            )
            continue
        others.append([str(name), str(rel)])
    return images, others
