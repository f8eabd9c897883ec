"""The report's blocks: the original / counterfactual / difference grid (one row per example),
its captions and fine-tuning summary as tables, the validation grid, the plumbing-check note.

Blocks handed to the core hold only the keys of its typed blocks (``fairaudit.results``);
:func:`image_grid_section` builds the richer dict the generator keeps as ``report_details_``.
"""

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


#: Title of the text block that marks a tiny random pipeline's output.
PLUMBING_TITLE = "Plumbing check, not a result"


def plumbing_check_block(model_dir: str) -> dict[str, Any]:
    """A text block saying the pipeline is a tiny random one: its images test code, not a method."""
    return {
        "kind": "text",
        "title": PLUMBING_TITLE,
        "text": (
            f"{PLUMBING_TITLE}: the Stable Diffusion pipeline {model_dir!r} is a tiny pipeline with "
            "random weights (fairaudit_diffusion.tiny), built to exercise the code paths. Its "
            "counterfactuals, validation samples and the metrics computed on them say nothing "
            "about the method or the audited data.\n\nFor a result, set params.model_dir to a "
            "local folder holding a real pipeline (e.g. SD v1.5 saved with save_pretrained)."
        ),
    }


def validation_grid_section(
    rows: Mapping[int, np.ndarray],
    prompts: list[str],
    *,
    figure_path: Path | None,
    ema: bool = False,
) -> dict[str, Any]:
    """The validation samples as an ``image_grid`` block: one row per step, one column per prompt.

    ``rows[step]`` holds ``(k, C, H, W)`` images in [0, 1]; the PNG goes to ``figure_path``
    (embedded as ``data_uri`` without a run folder).
    """
    steps = sorted(rows)
    grid = [list(rows[s]) for s in steps]
    labels = [f"step {s}" for s in steps]
    columns = [f"prompt {j + 1}" for j in range(len(prompts))]
    weights = "EMA weights" if ema else "the trained weights"
    section: dict[str, Any] = {
        "kind": "image_grid",
        "title": "Validation samples during fine-tuning",
        "caption": (
            f"Samples from the same noise at each step, with {weights}. "
            + " ".join(f"Prompt {j + 1}: {p!r}." for j, p in enumerate(prompts))
        ),
    }
    if figure_path is not None:
        save_grid(figure_path, grid, row_labels=labels, col_labels=columns)
        section["path"] = f"figures/{figure_path.name}"
    else:
        png = grid_png(grid, row_labels=labels, col_labels=columns)
        section["data_uri"] = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return section


def image_block(section: Mapping[str, Any]) -> dict[str, Any]:
    """The ``image_grid`` block of a :func:`image_grid_section` dict (only the typed keys)."""
    keys = ("kind", "title", "caption", "path", "data_uri")
    return {k: section[k] for k in keys if k in section}


def prompts_table(section: Mapping[str, Any]) -> dict[str, Any]:
    """The source and target caption of each grid row, as a table block."""
    rows = [
        [label, p["source"], p["target"]]
        for label, p in zip(section["row_labels"], section["prompts"], strict=True)
    ]
    return {
        "kind": "table",
        "title": "Captions of the edits",
        "columns": ["row", "source caption", "target caption"],
        "rows": rows,
        "caption": f"Mean absolute pixel change: {section['mean_abs_change']:.4f}.",
    }


def finetune_table(finetune: Mapping[str, Any]) -> dict[str, Any]:
    """The fine-tuning settings and figures, one row per item."""

    def cell(value: Any) -> Any:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "" if value is None else value

    return {
        "kind": "table",
        "title": "Fine-tuning",
        "columns": ["item", "value"],
        "rows": [[key.replace("_", " "), cell(value)] for key, value in finetune.items()],
    }
