"""Figures: valid, deterministic SVG; no pyplot state left behind; safe with odd group names."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fairaudit.blocks import to_block
from fairaudit.report import figures
from fairaudit.report.blocks import FigureSink, block_context

SVG_NS = "{http://www.w3.org/2000/svg}"
ODD = 'a<b & "$x^2$" \\mathrm'

ROC = {
    "F": {"fpr": [0, 0.1, 0.4, 1], "tpr": [0, 0.5, 0.8, 1], "auc": 0.8},
    ODD: {"fpr": [0, 0.2, 1], "tpr": [0, 0.7, 1], "auc": 0.75},
}
CAL = {
    "F": {
        "mean_predicted": [0.1, 0.5, 0.9],
        "fraction_positive": [0.15, 0.45, 0.8],
        "count": [50, 30, 20],
    },
    "M": {"mean_predicted": [0.2, 0.6], "fraction_positive": [0.1, 0.7], "count": [10, 12]},
}


def _all_figures() -> dict[str, str]:
    rows = [
        figures.ForestRow("EOD", {"baseline": (0.2, 0.1, 0.3), "deb": (0.05, -0.01, 0.1)}, max=0.1),
        figures.ForestRow("AUC difference", {"baseline": (0.04, 0.0, 0.09)}),
    ]
    bars = [
        figures.ProbeBar("sex", "baseline", 0.9, 0.85, 0.95, 0.5),
        figures.ProbeBar("sex", "deb", 0.55, 0.5, 0.6, 0.51),
    ]
    attack = [
        figures.AttackSeries(
            "baseline", [0, 0.1, 0.2], [0.1, 0.2, 0.3], [0.05, 0.15, 0.2], [0.15, 0.25, 0.4]
        )
    ]
    return {
        "roc": figures.roc_figure(ROC, title="ROC by sex", dashed=[ODD]),
        "calibration": figures.calibration_figure(CAL, title="Calibration"),
        "forest": figures.forest_figure(rows, ["baseline", "deb"], title="Gaps"),
        "probe": figures.probe_figure(bars, ["baseline", "deb"], title="Probe AUC"),
        "attack": figures.bias_attack_figure(attack, title="Bias attack"),
        "line": figures.line_figure(
            [("loss", [1, 2, 3], [1.0, None, 0.5])], title="Loss", xlabel="epoch"
        ),
    }


@pytest.fixture(scope="module")
def svgs() -> dict[str, str]:
    return _all_figures()


def test_figures_are_valid_svg_with_their_text(svgs: dict[str, str]) -> None:
    for name, svg in svgs.items():
        root = ET.fromstring(svg.encode("utf-8"))
        assert root.tag == f"{SVG_NS}svg", name
        assert "<dc:date>" not in svg, name  # no timestamp
        texts = "".join(root.itertext())
        assert texts.strip(), name  # real text (svg.fonttype none), selectable in the PDF
    assert ODD in "".join(
        ET.fromstring(svgs["roc"]).itertext()
    )  # mathtext off, escaped, kept verbatim
    assert "declared threshold" in svgs["forest"] and "shuffled-label baseline" in svgs["probe"]


def test_figures_are_deterministic(svgs: dict[str, str]) -> None:
    again = _all_figures()
    for name in svgs:
        assert svgs[name] == again[name], name


def test_no_pyplot_figures_are_left_open(svgs: dict[str, str]) -> None:
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    _all_figures()
    assert len(plt.get_fignums()) == before == 0


def test_inline_svgs_have_unique_ids(svgs: dict[str, str]) -> None:
    sink = FigureSink()
    blocks = [sink.add("same name", svg) for svg in svgs.values()]
    html = "".join(str(b["svg"]) for b in blocks)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert ids and len(ids) == len(set(ids))
    for ref in re.findall(r"url\(#([^)]+)\)", html):
        assert ref in ids
    assert len(sink.files) == len(
        svgs
    )  # "same name" made unique: same-name.svg, same-name-2.svg...
    assert "same-name-2.svg" in sink.files and not html.startswith("<?xml")


def test_curve_section_shapes(tmp_path: Path) -> None:
    sink = FigureSink()
    dict_form = block_context(
        to_block({
            "kind": "curve",
            "title": "t",
            "x": [1, 2],
            "series": {"a": [0.1, 0.2]},
            "xlabel": "epoch",
            "ylabel": "loss",
        }),
        tmp_path,
        sink,
        "c1",
    )
    list_form = block_context(
        to_block({
            "kind": "curve",
            "title": "t",
            "x_label": "epoch",
            "y_label": "loss",
            "series": [{"name": "a", "x": [1, 2], "y": [0.1, 0.2]}],
        }),
        tmp_path,
        sink,
        "c2",
    )
    empty = block_context(to_block({"kind": "curve", "title": "t", "series": {}}), tmp_path, sink, "c3")
    assert dict_form["type"] == list_form["type"] == "figure" and empty["type"] == "notice"
    assert sink.files["c1.svg"] == sink.files["c2.svg"]  # same data, same drawing
