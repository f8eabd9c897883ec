"""Figures collected while building a report, and plugin blocks (typed report content of an
arm: table, text, image, curve; see :mod:`fairaudit.results`) turned into template blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from fairaudit.report import figures
from fairaudit.report.fmt import cell, slug
from fairaudit.report.safety import clean_data_uri, inline_image
from fairaudit.results import Block, CurveBlock, ImageBlock, TableBlock, TextBlock

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


def _table(block: TableBlock) -> dict[str, Any]:
    columns = list(block.columns)
    rows: list[list[str]] = []
    for raw in block.rows[:MAX_TABLE_ROWS]:
        rows.append([cell(raw.get(c)) for c in columns] if isinstance(raw, dict) else [cell(v) for v in raw])
    width = max([len(columns), *(len(r) for r in rows)], default=0)
    columns += [""] * (width - len(columns))
    rows = [r + [""] * (width - len(r)) for r in rows]
    caption = block.caption
    if len(block.rows) > MAX_TABLE_ROWS:
        caption = f"{caption} (first {MAX_TABLE_ROWS} of {len(block.rows)} rows shown)".strip()
    return {"type": "table", "title": block.title, "columns": columns, "rows": rows, "caption": caption,
            "wide": width > 6}


def _image(block: ImageBlock, run_dir: Path) -> dict[str, Any]:
    title = block.title or "Image"
    if block.path is not None:
        src = inline_image(run_dir, block.path)
        if src is None:
            return notice(title, f"image {block.path} not shown: it is not a PNG/JPEG file inside the run folder")
    elif block.data_uri is not None:
        src = clean_data_uri(block.data_uri)
        if src is None:
            return notice(title, "embedded image not shown: not a valid PNG/JPEG data URI")
    else:
        return notice(title, "image section without an image")
    return {"type": "image", "title": block.title, "src": src, "caption": block.caption,
            "alt": block.title or "image"}


def _curve(block: CurveBlock, sink: FigureSink, key: str) -> dict[str, Any]:
    series = [(s.name, s.x, s.y) for s in block.series]
    if not series:
        return notice(block.title or "Curve", "curve section without data")
    svg = figures.line_figure(series, title=block.title, xlabel=block.xlabel, ylabel=block.ylabel)
    return sink.add(key, svg, title="", caption=block.caption)


def block_context(block: Block, run_dir: Path, sink: FigureSink, key: str) -> dict[str, Any]:
    """One plugin block (see :mod:`fairaudit.results`) as a template block; ``key`` names its figure."""
    if isinstance(block, TableBlock):
        return _table(block)
    if isinstance(block, TextBlock):
        paragraphs = [p.strip() for p in block.text.split("\n\n") if p.strip()]
        return {"type": "text", "title": block.title, "paragraphs": paragraphs}
    if isinstance(block, ImageBlock):
        return _image(block, run_dir)
    return _curve(block, sink, key)


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
