"""Report charts as deterministic SVG (matplotlib, no pyplot state, fixed hash salt, no date).

Every function takes plain data (lists, dicts) and returns the SVG document as text; the
caller inlines it into the HTML and saves it under ``figures/``.  Figures are built on a
bare :class:`matplotlib.figure.Figure` inside an ``rc_context`` (nothing is registered with
pyplot, so nothing leaks), and group names are drawn as plain text (mathtext off).
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: Okabe–Ito colour-blind-safe palette.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
THRESHOLD_COLOUR = "#B2182B"
FULL_WIDTH = 6.4  # inches: the PDF text width (A4, 2 cm margins) minus a little
HALF_WIDTH = 3.15

RC: dict[str, Any] = {
    "svg.hashsalt": "fairaudit-report",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.prop_cycle": None,  # filled in by _rc() (needs matplotlib's cycler)
    "text.usetex": False,
    "text.parse_math": False,
    "path.simplify": True,
    "figure.dpi": 100,
}


@contextmanager
def _rc() -> Iterator[None]:
    import matplotlib
    from cycler import cycler

    params = {**RC, "axes.prop_cycle": cycler(color=list(PALETTE))}
    with matplotlib.rc_context(params):
        yield


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _axes(fig: Any, *, left: float, right: float, top: float, bottom: float) -> Any:
    """Axes placed with margins in inches (fixed layout: fast and deterministic)."""
    width, height = fig.get_size_inches()
    return fig.add_axes(
        (
            left / width,
            bottom / height,
            max(0.1, 1 - (left + right) / width),
            max(0.1, 1 - (top + bottom) / height),
        )
    )


def to_svg(fig: Any) -> str:
    """The SVG document of ``fig`` (deterministic: no date, fixed ids), then release it."""
    buf = io.StringIO()
    try:
        fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        fig.clear()
    return buf.getvalue()


def inline_svg(svg: str, prefix: str) -> str:
    """SVG text for embedding in HTML: no XML prolog, ids prefixed so figures never collide."""
    body = svg[svg.index("<svg") :]
    body = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', body)
    body = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", body)
    body = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', body)
    return body.replace("<svg ", '<svg class="chart" role="img" ', 1)


def short(text: str, width: int = 34) -> str:
    """``text`` cut to ``width`` characters (legend labels must not push the axes away)."""
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def wrap(text: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def floats(values: Any) -> list[float]:
    """``values`` as floats, ``None``/non-numbers -> NaN (so gaps show as gaps)."""
    out: list[float] = []
    for v in values or []:
        try:
            out.append(float(v) if v is not None else math.nan)
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


# ---------------------------------------------------------------- per-group curves
def _unit_square_axes(fig: Any, diagonal_label: str) -> Any:
    """Axes for a curve on [0, 1]², with the dashed diagonal reference."""
    ax = _axes(fig, left=0.55, right=0.12, top=0.3, bottom=0.45)
    ax.plot([0, 1], [0, 1], color="#9a9a9a", lw=0.8, ls="--", label=diagonal_label)
    return ax


def _finish_unit_square(ax: Any, *, xlabel: str, ylabel: str, title: str, legend: str) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.legend(loc=legend, frameon=False)


def roc_figure(
    curves: Mapping[str, Mapping[str, Any]], *, title: str, dashed: Sequence[str] = ()
) -> str:
    """ROC curve per group; ``dashed`` groups (too small to judge) drawn dotted."""
    with _rc():
        fig = _figure(HALF_WIDTH, 3.1)
        ax = _unit_square_axes(fig, "chance")
        for i, (group, curve) in enumerate(curves.items()):
            fpr, tpr = floats(curve.get("fpr")), floats(curve.get("tpr"))
            if not fpr or len(fpr) != len(tpr):
                continue
            auc = curve.get("auc")
            label = short(group) + (f" (AUC {auc:.3f})" if isinstance(auc, (int, float)) else "")
            ax.plot(
                fpr,
                tpr,
                color=PALETTE[i % len(PALETTE)],
                lw=1.4,
                ls=":" if group in dashed else "-",
                label=label,
                drawstyle="default",
            )
        _finish_unit_square(
            ax,
            xlabel="False positive rate (1 − specificity)",
            ylabel="True positive rate (sensitivity)",
            title=title,
            legend="lower right",
        )
        return to_svg(fig)


def calibration_figure(
    curves: Mapping[str, Mapping[str, Any]], *, title: str, dashed: Sequence[str] = ()
) -> str:
    """Reliability diagram per group; marker area grows with the bin's count."""
    with _rc():
        fig = _figure(HALF_WIDTH, 3.1)
        ax = _unit_square_axes(fig, "perfect calibration")
        for i, (group, curve) in enumerate(curves.items()):
            x, y = floats(curve.get("mean_predicted")), floats(curve.get("fraction_positive"))
            if not x or len(x) != len(y):
                continue
            counts = floats(curve.get("count")) or [1.0] * len(x)
            top = max((c for c in counts if _finite(c)), default=1.0) or 1.0
            sizes = [8 + 40 * math.sqrt(c / top) if _finite(c) else 8 for c in counts]
            colour = PALETTE[i % len(PALETTE)]
            ax.plot(
                x, y, color=colour, lw=1.2, ls=":" if group in dashed else "-", label=short(group)
            )
            ax.scatter(x, y, s=sizes[: len(x)], color=colour, zorder=3, linewidths=0)
        _finish_unit_square(
            ax,
            xlabel="Mean predicted probability",
            ylabel="Observed fraction positive",
            title=title,
            legend="upper left",
        )
        return to_svg(fig)


# ---------------------------------------------------------------- forest plot of gaps
@dataclass
class ForestRow:
    """One gap metric: an estimate with CI for each arm, and a declared threshold if any."""

    label: str
    estimates: dict[str, tuple[float | None, float | None, float | None]] = field(
        default_factory=dict
    )
    min: float | None = None
    max: float | None = None


THRESHOLD_LABEL = "declared threshold"


def forest_figure(
    rows: Sequence[ForestRow], arms: Sequence[str], *, title: str, width: float = FULL_WIDTH
) -> str:
    """Gaps (point and CI) by metric, one marker per arm, declared thresholds in red."""
    n_arms = max(1, len(arms))
    step = 0.18 + 0.11 * n_arms
    labels = [wrap(r.label, 34) for r in rows]
    longest = max((len(line) for lab in labels for line in lab.split("\n")), default=10)
    legend_rows = math.ceil((n_arms + 1) / 4)
    bottom = 0.5 + 0.2 * legend_rows
    with _rc():
        fig = _figure(width, bottom + 0.35 + step * len(rows))
        ax = _axes(fig, left=0.25 + 0.058 * longest, right=0.15, top=0.3, bottom=bottom)
        ax.axvline(0, color="#555555", lw=0.8)
        offsets = (
            [0.0]
            if n_arms == 1
            else [(j - (n_arms - 1) / 2) * (0.7 / n_arms) for j in range(n_arms)]
        )
        labelled: set[str] = set()
        for i, row in enumerate(rows):
            _forest_estimates(ax, row, -i, arms, offsets, labelled)
            _forest_bounds(ax, row, -i, labelled)
        ax.set_yticks([-i for i in range(len(rows))], labels)
        ax.set_ylim(-len(rows) + 0.4, 0.6)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("Gap between groups (point estimate and confidence interval)")
        ax.set_title(title, loc="left")
        handles, labels = ax.get_legend_handles_labels()
        if labels:
            fig.legend(
                handles,
                labels,
                loc="lower center",
                ncols=min(4, len(labels)),
                frameon=False,
                bbox_to_anchor=(0.5, 0.0),
            )
        return to_svg(fig)


def _forest_estimates(ax: Any, row: ForestRow, y: float, arms: Sequence[str], offsets: list[float],
                      labelled: set[str]) -> None:
    """Each arm's point and interval on row ``y`` (an arm's name enters the legend once)."""
    for j, arm in enumerate(arms):
        value, low, high = row.estimates.get(arm, (None, None, None))
        if not _finite(value):
            continue
        yy, colour = y + offsets[j], PALETTE[j % len(PALETTE)]
        if _finite(low) and _finite(high):
            ax.plot([low, high], [yy, yy], color=colour, lw=1.3, solid_capstyle="butt")
        ax.plot([value], [yy], marker="o", ms=4, color=colour,
                label="_nolegend_" if arm in labelled else short(arm, 28))
        labelled.add(arm)


def _forest_bounds(ax: Any, row: ForestRow, y: float, labelled: set[str]) -> None:
    """The row's declared thresholds as dashed red ticks (one legend entry in all)."""
    for bound in (row.min, row.max):
        if _finite(bound):
            ax.plot([bound, bound], [y - 0.45, y + 0.45], color=THRESHOLD_COLOUR, lw=1.2, ls="--",
                    label="_nolegend_" if "\0threshold" in labelled else THRESHOLD_LABEL)
            labelled.add("\0threshold")  # not an arm name


# ---------------------------------------------------------------- probes
@dataclass
class ProbeBar:
    """One probe AUC: which attribute, which arm, value with CI, and the shuffled-label AUC."""

    attribute: str
    arm: str
    value: float | None
    low: float | None = None
    high: float | None = None
    shuffled: float | None = None


def probe_figure(bars: Sequence[ProbeBar], arms: Sequence[str], *, title: str) -> str:
    """Grouped bars: attributes on x, a bar per arm, CI whiskers, shuffled-label baselines."""
    attributes = list(dict.fromkeys(b.attribute for b in bars))
    n_arms = max(1, len(arms))
    width = 0.8 / n_arms
    with _rc():
        fig = _figure(min(FULL_WIDTH, 3.6 + 0.4 * len(attributes) * n_arms), 2.8)
        ax = _axes(fig, left=0.55, right=1.75, top=0.3, bottom=0.4)
        ax.axhline(0.5, color="#555555", lw=0.8, ls="--", label="chance (0.5)")
        drew_shuffled = False
        for j, arm in enumerate(arms):
            for i, attribute in enumerate(attributes):
                bar = next((b for b in bars if b.arm == arm and b.attribute == attribute), None)
                if bar is None or not _finite(bar.value):
                    continue
                x = i + (j - (n_arms - 1) / 2) * width
                err = None
                if _finite(bar.low) and _finite(bar.high):
                    err = [[max(0.0, bar.value - bar.low)], [max(0.0, bar.high - bar.value)]]
                ax.bar(
                    [x],
                    [bar.value],
                    width=width * 0.9,
                    color=PALETTE[j % len(PALETTE)],
                    yerr=err,
                    capsize=2,
                    error_kw={"lw": 0.8},
                    label=short(arm, 28) if i == 0 else "_nolegend_",
                )
                if _finite(bar.shuffled):
                    ax.plot(
                        [x - width * 0.45, x + width * 0.45],
                        [bar.shuffled, bar.shuffled],
                        color="#222222",
                        lw=1.2,
                        ls=":",
                        label="_nolegend_" if drew_shuffled else "shuffled-label baseline",
                    )
                    drew_shuffled = True
        ax.set_xticks(range(len(attributes)), [short(a, 20) for a in attributes])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("Probe AUC")
        ax.grid(axis="x", visible=False)
        ax.set_title(title, loc="left")
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        return to_svg(fig)


# ---------------------------------------------------------------- bias attack
@dataclass
class AttackSeries:
    """EOD as the fraction of flipped labels grows, for one arm."""

    arm: str
    fractions: list[float]
    eod: list[float]
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)


def bias_attack_figure(series: Sequence[AttackSeries], *, title: str) -> str:
    """Bias-attack curves: EOD against the poisoned fraction, one line (and CI band) per arm."""
    with _rc():
        fig = _figure(HALF_WIDTH, 2.7)
        ax = _axes(fig, left=0.55, right=0.12, top=0.3, bottom=0.45)
        for j, s in enumerate(series):
            x, y = floats(s.fractions), floats(s.eod)
            if not x or len(x) != len(y):
                continue
            colour = PALETTE[j % len(PALETTE)]
            lo, hi = floats(s.low), floats(s.high)
            if len(lo) == len(x) and len(hi) == len(x):
                ax.fill_between(x, lo, hi, color=colour, alpha=0.18, linewidth=0)
            ax.plot(x, y, color=colour, lw=1.4, marker="o", ms=3, label=short(s.arm, 28))
        ax.set_xlabel("Fraction of labels flipped in training")
        ax.set_ylabel("Equal opportunity difference")
        ax.set_title(title, loc="left")
        ax.legend(frameon=False, loc="upper left")
        return to_svg(fig)


# ---------------------------------------------------------------- generic curves
def line_figure(
    series: Sequence[tuple[str, Sequence[Any], Sequence[Any]]],
    *,
    title: str,
    xlabel: str = "",
    ylabel: str = "",
) -> str:
    """A plain line plot (plugin ``curve`` sections): ``(name, x, y)`` per series."""
    legend_rows = math.ceil(len(series) / 2) if len(series) > 1 else (1 if series else 0)
    bottom = 0.5 + 0.17 * legend_rows
    with _rc():
        fig = _figure(FULL_WIDTH * 0.85, 2.4 + 0.17 * legend_rows)
        ax = _axes(fig, left=0.65, right=0.15, top=0.3, bottom=bottom)
        for j, (name, xs, ys) in enumerate(series):
            x, y = floats(xs), floats(ys)
            n = min(len(x), len(y))
            if n == 0:
                continue
            ax.plot(
                x[:n],
                y[:n],
                color=PALETTE[j % len(PALETTE)],
                lw=1.3,
                marker="o" if n <= 25 else None,
                ms=2.5,
                label=short(name, 48),
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left")
        if series:
            fig.legend(
                loc="lower center",
                ncols=2 if len(series) > 1 else 1,
                frameon=False,
                bbox_to_anchor=(0.5, 0.0),
            )
        return to_svg(fig)
