"""The report's image grid: original / counterfactual / difference, one row per example."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fairaudit.imaging import difference_image, grid_png, save_grid

COLUMNS = ["original", "counterfactual", "difference"]


def image_grid_section(
    examples: Mapping[str, Any],
    *,
    title: str,
    caption: str,
    figure_path: Path | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A JSON-safe ``{"kind": "image_grid", ...}`` section; the PNG goes to ``figure_path``.

    Without a run folder (``figure_path`` is ``None``) the PNG is embedded as ``data_uri``.
    """
    originals, edited = examples["original"], examples["counterfactual"]
    rows = [[o, e, difference_image(o, e)] for o, e in zip(originals, edited, strict=True)]
    info = examples.get("info", {})
    stem = f"{info['factor']} edit" if info.get("kind") == "factor" else "edit"
    labels = [f"{stem} {i + 1}" for i in range(len(rows))]
    section: dict[str, Any] = {
        "kind": "image_grid",
        "title": title,
        "columns": list(COLUMNS),
        "row_labels": labels,
        "prompts": [
            {"source": s, "target": t}
            for s, t in zip(examples["source"], examples["target"], strict=True)
        ],
        "caption": caption,
        "edit": dict(info),
        "mean_abs_change": float(np.mean(np.abs(np.asarray(edited) - np.asarray(originals)))),
        **dict(extra or {}),
    }
    if figure_path is not None:
        save_grid(figure_path, rows, row_labels=labels, col_labels=COLUMNS)
        section["path"] = f"figures/{figure_path.name}"
    else:
        png = grid_png(rows, row_labels=labels, col_labels=COLUMNS)
        section["data_uri"] = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return section
