"""Report content of a fitted ``alphashift`` debiaser: tables and PNG image grids."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from fairaudit.imaging import difference_image, save_grid

if TYPE_CHECKING:
    from fairaudit_alphashift.debiaser import AlphaShiftDebiaser


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "attribute"


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def reconstruction_table(deb: AlphaShiftDebiaser) -> dict[str, Any] | None:
    report = deb.train_report_
    if report is None:
        return None
    rows = [
        ["held-out SSIM (mean)", _fmt(report.val_ssim)],
        ["held-out MSE (mean)", _fmt(report.val_mse, 5)],
        ["held-out images", str(report.n_val)],
        ["training images", str(report.n_train)],
        ["epochs run", str(report.epochs)],
        ["parameters", f"{deb.n_parameters_:,}"],
        ["training throughput (samples/s)", f"{report.samples_per_s:.1f}"],
    ]
    return {"kind": "table", "title": "alphashift autoencoder: reconstruction quality",
            "columns": ["quantity", "value"], "rows": rows,
            "caption": "Clean reconstructions from the latent mean on images held out from "
                       "autoencoder training (early-stopping split). SSIM 1 = identical."}


def training_curve(deb: AlphaShiftDebiaser) -> dict[str, Any] | None:
    report = deb.train_report_
    if report is None or not report.history:
        return None
    x = [int(row["epoch"]) + 1 for row in report.history]
    series = {"training loss": [row["train_loss"] for row in report.history]}
    if "val_loss" in report.history[0]:
        series["held-out loss"] = [row["val_loss"] for row in report.history]
    return {"kind": "curve", "title": "alphashift autoencoder training", "x": x, "series": series,
            "xlabel": "epoch", "ylabel": "loss",
            "caption": "Weighted SSIM/MSE + beta KL per epoch; training images are randomly "
                       "erased (denoising), held-out ones are not."}


def directions_table(deb: AlphaShiftDebiaser) -> dict[str, Any]:
    rows = []
    for d in deb.directions_:
        for level, vec in zip(d.levels, d.vectors, strict=True):
            rows.append([d.attribute, f"{d.reference} -> {level}",
                         f"{d.counts.get(d.reference, 0)} / {d.counts.get(level, 0)}",
                         f"{float(np.linalg.norm(vec)):.3f}", d.mode])
    return {"kind": "table", "title": "alphashift bias directions",
            "columns": ["attribute", "direction", "n (reference / level)", "norm", "estimate"],
            "rows": rows,
            "caption": f"Head retrained on the training representation plus {deb.n_augment} copies "
                       f"shifted by alpha ~ U(-{deb.alpha_max:g}, {deb.alpha_max:g}) along each "
                       f"direction. Latent RMS spread per dimension: {deb.latent_scale_:.3f}."}


def sweep_section(deb: AlphaShiftDebiaser, attribute: str) -> dict[str, Any] | None:
    images, labels = deb.sweep_examples_.get(attribute, (None, []))
    path = deb.run_context().figure_path(f"{deb.fit_key_}-sweep-{_safe(attribute)}.png")
    if images is None or len(images) == 0 or path is None:
        return None
    alphas = [float(a) for a in deb.sweep_alphas]
    decoded = deb.alpha_sweep(images, attribute, alphas)
    rows = []
    for i in range(len(images)):
        rows.append([images[i], *decoded[i], difference_image(decoded[i][0], decoded[i][-1])])
    cols = ["input", *[f"a={a:g}" for a in alphas], f"diff {alphas[-1]:g} vs {alphas[0]:g}"]
    save_grid(path, rows, row_labels=labels, col_labels=cols)
    direction = next(d for d in deb.directions_ if d.attribute == attribute)
    kept = round_trip(deb, decoded, attribute, alphas)
    missed = missed_feature(deb, images, labels, attribute, direction.reference, direction.levels)
    return {"kind": "image_grid", "title": f"alpha sweep along '{attribute}'",
            "image": f"figures/{path.name}",
            "caption": f"Each row decodes z + alpha (zbar_{direction.levels[0]} - "
                       f"zbar_{direction.reference}) for one training image "
                       f"({direction.mode} estimate); the last column is the signed difference "
                       "between the extreme alphas (grey = no change). " + sweep_reading(attribute, kept, missed)}


#: Below this share of the latent move surviving decoding, the caption says the decoder does not
#: render what the direction encodes.
RENDERED = 0.5
#: A level whose reconstructions miss this many times more (99th-percentile error) than the
#: reference level's has a feature the decoder does not draw.
MISSED = 2.0


def round_trip(deb: AlphaShiftDebiaser, decoded: np.ndarray, attribute: str, alphas: list[float]) -> float | None:
    """How much of the sweep's latent move the decoded images carry: the decoded extremes are
    encoded again and their difference projected on the direction ``d``, per unit of the move
    (``<E(D(z + a_max d)) - E(D(z + a_min d)), d> / ((a_max - a_min) |d|^2)``, mean over rows).
    1 = the images carry the whole move; 0 = the decoder draws nothing of it.  Whatever the
    decoder draws counts, not only the attribute's own feature.  ``None`` without two alphas."""
    span = float(alphas[-1]) - float(alphas[0])
    vector = np.asarray(deb.direction_for(attribute), dtype=np.float64)
    norm2 = float(vector @ vector)
    if len(alphas) < 2 or abs(span) < 1e-12 or norm2 <= 0.0:
        return None
    low, high = deb.transform(decoded[:, 0]), deb.transform(decoded[:, -1])
    return float(np.mean((high - low).astype(np.float64) @ vector) / (span * norm2))


def missed_feature(deb: AlphaShiftDebiaser, images: np.ndarray, labels: list[str], attribute: str,
                   reference: str, levels: list[str]) -> tuple[str, float] | None:
    """The level whose images the decoder reconstructs worst against the reference level's, with
    the ratio of their 99th-percentile absolute reconstruction errors (mean over the level's
    examples), when it is at least :data:`MISSED`: a feature only that level has (a thin device,
    a marker) that the decoder does not draw.  ``None`` when no level stands out."""
    prepared = deb._prepare_images(images)
    errors = np.abs(prepared - deb.decode(deb.transform(images)))
    q99 = np.quantile(errors.reshape(len(errors), -1), 0.99, axis=1)
    names = np.asarray(labels)
    ref = q99[names == f"{attribute}={reference}"]
    if len(ref) == 0 or float(ref.mean()) <= 0.0:
        return None
    ratios = {lv: float(q99[names == f"{attribute}={lv}"].mean() / ref.mean())
              for lv in levels if np.any(names == f"{attribute}={lv}")}
    worst = max(ratios.items(), key=lambda item: item[1], default=None)
    return worst if worst is not None and worst[1] >= MISSED else None


def sweep_reading(attribute: str, kept: float | None, missed: tuple[str, float] | None = None) -> str:
    """How to read an alpha sweep: the latent moves along the direction; what the images show is
    only what the decoder renders of that move (``kept``: :func:`round_trip`; ``missed``:
    :func:`missed_feature`)."""
    text = (f"The sweep moves the latent code along the '{attribute}' direction the encoder separates; "
            "the images show only what the decoder renders of that move.")
    if kept is not None:
        text += (f" Encoding the decoded extremes again recovers {100 * kept:.0f}% of the move along the "
                 "direction (carried by whatever the decoder draws, not necessarily the attribute's own feature).")
    if missed is not None:
        level, ratio = missed
        return text + (f" The decoder does not render the '{attribute}' feature: its reconstructions of "
                       f"'{attribute}={level}' images miss something the other images lack (99th-percentile "
                       f"reconstruction error {ratio:.1f}x theirs). The sweep moves the latent along the "
                       f"'{attribute}' direction but the decoder does not draw it, so these images are not "
                       "evidence of what the head sees: read the head's reliance from the counterfactual "
                       "metrics instead.")
    if kept is not None and kept < RENDERED:
        return text + (" The decoder does not render what the direction encodes, so these images are not "
                       "evidence of what the head sees: read the head's reliance from the counterfactual "
                       "metrics instead.")
    return text + (f" Check that the change is the '{attribute}' feature itself before reading it as what the "
                   "head sees: if that feature does not change across a row, the decoder does not draw it and "
                   "the images are not evidence of what the head sees.")


def attention_section(deb: AlphaShiftDebiaser) -> dict[str, Any] | None:
    att = deb.attention_map()
    path = deb.run_context().figure_path(f"{deb.fit_key_}-attention.png")
    if att is None or path is None:
        return None
    lo, hi = float(att.min()), float(att.max())
    scaled = (att - lo) / (hi - lo) if hi > lo else np.full_like(att, 0.5)
    examples = next(iter(deb.sweep_examples_.values()), (None, []))[0]
    mean_image = examples.mean(axis=0)[0] if examples is not None and len(examples) else None
    row = [scaled] if mean_image is None else [mean_image, scaled]
    save_grid(path, [row], col_labels=(["attention"] if mean_image is None
                                       else ["mean example", "attention 1-W"]))
    return {"kind": "image_grid", "title": "alphashift learned attention map",
            "image": f"figures/{path.name}",
            "caption": f"attention = 1 - W, where W weights the reconstruction loss per pixel "
                       f"(penalty pulls mean(W) to 1). Shown min-max scaled; range "
                       f"[{lo:.3f}, {hi:.3f}]. Bright = down-weighted (hard or noisy) pixels."}


def build_sections(deb: AlphaShiftDebiaser) -> list[dict[str, Any]]:
    """All sections available for ``deb`` (image grids only inside a run folder)."""
    sections: list[dict[str, Any] | None] = [directions_table(deb)]
    if deb.input_kind_ == "images":
        sections.append(reconstruction_table(deb))
        sections.append(training_curve(deb))
        sections.extend(sweep_section(deb, d.attribute) for d in deb.directions_)
        sections.append(attention_section(deb))
    return [s for s in sections if s is not None]
