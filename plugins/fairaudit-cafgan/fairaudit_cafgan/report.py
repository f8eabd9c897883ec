"""Report sections of a fitted :class:`~fairaudit_cafgan.CAFGAN` (JSON-serialisable dicts).

Section kinds: ``image_grid`` (a PNG in the run's ``figures/`` folder, or an inline
``data_uri`` outside a run), ``curve`` (per-epoch series) and ``table`` (columns + rows).
"""

from __future__ import annotations

import base64
import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fairaudit_cafgan.generator import CAFGAN

N_GENERATED = 6


def sample_grid_rows(
    model: CAFGAN, n_generated: int = N_GENERATED
) -> tuple[list[list[np.ndarray]], list[str], list[str]]:
    """Rows of the sample grid: one per group x label, real examples then generated ones
    (the same noise in every row, so rows differ only by their condition)."""
    rows, labels = [], []
    n_real = max((len(v) for v in model.examples_.values()), default=0)
    for group in model.groups_:
        for label in (0, 1):
            fake = model._generate_working(np.full(n_generated, label), np.array([group] * n_generated))
            real = list(model.examples_.get(f"{group}|{label}", []))
            blank = [np.ones_like(fake[0]) for _ in range(n_real - len(real))]
            rows.append(real + blank + list(fake))
            labels.append(f"{group} y={label}")
    columns = ["real"] * n_real + ["generated"] * n_generated
    return rows, labels, columns


def grid_section(model: CAFGAN) -> dict[str, Any]:
    from fairaudit.imaging import grid_png, save_grid

    rows, row_labels, col_labels = sample_grid_rows(model)
    section: dict[str, Any] = {
        "kind": "image_grid",
        "title": f"CAF-GAN samples per {model.group_attribute} x label",
        "caption": (
            f"Rows: {model.group_attribute} group and label. First columns: real training images; "
            f"then generated images (same noise in every row). lambda_fair={model.lambda_fair}, "
            f"lambda_clinic={model.lambda_clinic}."
        ),
        "row_labels": row_labels,
        "col_labels": col_labels,
    }
    name = f"{model._tag()}_samples.png"
    path = model.run_context().figure_path(name)
    if path is not None:
        save_grid(path, rows, row_labels=row_labels, col_labels=col_labels)
        section["path"] = f"figures/{name}"
    else:
        png = grid_png(rows, row_labels=row_labels, col_labels=col_labels)
        section["data_uri"] = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return section


def _clean(values: list[float | None]) -> list[float | None]:
    return [None if v is None or not math.isfinite(v) else float(v) for v in values]


def curve_section(model: CAFGAN) -> dict[str, Any]:
    history = model.history_
    names = {
        "critic_loss": "critic loss",
        "wasserstein": "Wasserstein estimate",
        "gradient_penalty": "gradient penalty",
        "monitor_fairness": "fairness term (soft TPR gap, fixed noise)",
        "monitor_clinical": "clinical term (fixed noise)",
    }
    series = {
        label: _clean([rec.get(key) for rec in history])
        for key, label in names.items()
        if any(key in rec for rec in history)
    }
    return {
        "kind": "curve",
        "title": "CAF-GAN training curves",
        "x_label": "epoch",
        "x": [int(rec["epoch"]) for rec in history],
        "series": series,
        "caption": (
            "Critic loss, Wasserstein estimate (mean D(real) - D(fake)) and gradient penalty are "
            "epoch means; the fairness and clinical terms are evaluated after each epoch on a "
            "fixed noise batch, for every lambda (also 0)."
        ),
    }


def plausibility_section(model: CAFGAN) -> dict[str, Any] | None:
    if not model.real_plausibility_:
        return None
    columns = [
        "set",
        "n",
        "implausible rate",
        "lung area (mean)",
        "lung area (sd)",
        "left/right balance",
        "two lung fields",
    ]
    sets = [
        ("real, reference masks", model.real_plausibility_.get("masks")),
        ("real, segmenter", model.real_plausibility_.get("segmenter")),
        ("generated, segmenter", model.generated_plausibility_ or None),
    ]
    rows = []
    for label, s in sets:
        if s is None:
            continue
        rows.append(
            [
                label,
                int(s["n"]),
                round(s["implausible_rate"], 4),
                round(s["area_mean"], 4),
                round(s["area_std"], 4),
                round(s["balance_mean"], 4),
                round(s["two_components_rate"], 4),
            ]
        )
    b = model.plausibility_bounds_
    return {
        "kind": "table",
        "title": "Lung-mask plausibility: real vs generated",
        "columns": columns,
        "rows": rows,
        "caption": (
            f"A mask is implausible when its lung area is outside [{b['area_low']:.3f}, "
            f"{b['area_high']:.3f}] of the image, the smaller side has less than "
            f"{b['min_balance']:.2f} of the larger side's area, or it is not exactly two lung "
            "fields. Masks of generated images come from the frozen lung U-Net."
        ),
    }


def critics_section(model: CAFGAN) -> dict[str, Any]:
    rows = []
    if model.classifier_history_:
        last = model.classifier_history_[-1]
        rows.append(["diagnostic CNN (fairness critic)", "training accuracy", round(last["accuracy"], 4)])
    if model.segmenter_history_:
        last = model.segmenter_history_[-1]
        rows.append(["lung U-Net (clinical critic)", "training Dice", round(last["dice"], 4)])
    elif model.segmenter_checkpoint:
        rows.append(["lung U-Net (clinical critic)", "loaded from", str(model.segmenter_checkpoint)])
    return {
        "kind": "table",
        "title": "CAF-GAN frozen critics",
        "columns": ["critic", "measure", "value"],
        "rows": rows,
    }


def build_sections(model: CAFGAN) -> list[dict[str, Any]]:
    sections = [grid_section(model), curve_section(model)]
    table = plausibility_section(model)
    if table is not None:
        sections.append(table)
    sections.append(critics_section(model))
    return sections
