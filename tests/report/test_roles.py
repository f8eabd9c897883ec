"""The report places results by their declared role, never by their names; version-1 results
(no roles) still render through the upgrade reader."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from fairaudit.report import render_html
from fairaudit.report.arms import arm_context, forest_rows
from fairaudit.report.blocks import FigureSink
from fairaudit.report.methods import methods
from fairaudit.report.summary import comparison, key_metrics, largest_gaps
from fairaudit.results import AuditResult, MetricResult, read_result

SAMPLES = Path(__file__).resolve().parents[2] / "reports" / "samples"
VERSION_1 = Path(__file__).resolve().parent / "data" / "v1"  # samples as rendered with result schema 1


def version_1_result(sample: str, folder: Path) -> Path:
    """A schema-1 ``result.json`` (kept gzipped under tests/report/data/v1), unpacked into ``folder``."""
    path = folder / f"{sample}.result.json"
    path.write_bytes(gzip.decompress((VERSION_1 / f"{sample}.result.json.gz").read_bytes()))
    return path


def _third_party(arm: str, shift: float) -> list[MetricResult]:
    """What a third-party metric plugin ('ward_metrics') emits: a worst-group accuracy (a key
    figure), a gap, and a result whose name *looks* like a gap but is declared a plain value."""
    out = []
    for attribute, worst, gap in (("sex", 0.71, 0.09), ("age_group", 0.64, 0.15)):
        out += [
            MetricResult(metric="worst_group_accuracy", plugin="ward_metrics", attribute=attribute,
                         role="worst_group", headline=True, derived_from="accuracy", higher_is_better=True,
                         value=worst + shift, ci_low=worst + shift - 0.05, ci_high=worst + shift + 0.05,
                         details={"group": "F" if attribute == "sex" else ">65"}),
            MetricResult(metric="ward_sensitivity_spread", plugin="ward_metrics", attribute=attribute,
                         label="Ward sensitivity spread", role="gap", headline=True,
                         derived_from="true_positive_rate", higher_is_better=False,
                         value=gap - shift, ci_low=gap - shift - 0.03, ci_high=gap - shift + 0.04),
            MetricResult(metric="bed_count_difference", plugin="ward_metrics", attribute=attribute,
                         label="Beds (not a gap)", role="value", value=12.0),
        ]
    return out


@pytest.fixture()
def result(demo: AuditResult) -> AuditResult:
    out = demo.model_copy(deep=True)
    for arm, shift in (("baseline", 0.0), ("advvae", 0.05)):
        out.arm(arm).metrics += _third_party(arm, shift)  # type: ignore[union-attr]
    return out


def test_a_third_party_gap_is_drawn_and_ranked_as_a_gap(result: AuditResult) -> None:
    labels = [row.label for row in forest_rows(result, [result.arm("baseline")], "sex")]  # type: ignore[list-item]
    assert "Ward sensitivity spread" in labels
    assert "Beds (not a gap)" not in labels  # its name ends in _difference, but it is declared a value
    assert any(g["metric"] == "Ward sensitivity spread" for g in largest_gaps(result))
    ctx = arm_context(result, result.arm("baseline"), 0, Path("."), FigureSink())  # type: ignore[arg-type]
    shown = {row["metric"] for row in ctx["gap_rows"]}
    assert {"Ward sensitivity spread", "Beds (not a gap)", "Worst group accuracy"} <= shown


def test_a_third_party_worst_group_value_is_a_key_figure(result: AuditResult) -> None:
    rows = {k.label: k for k in key_metrics(result)}
    worst = rows["Worst group accuracy"]
    # one row over every attribute: the most extreme worst group (age_group here)
    value, low, high, where = worst.get(result.arm("baseline"))  # type: ignore[misc]
    assert value == pytest.approx(0.64) and (low, high) == (pytest.approx(0.59), pytest.approx(0.69))
    assert where == "age_group = >65"
    assert worst.better == "higher"
    assert rows["Ward sensitivity spread (sex)"].better == "lower"
    assert "Beds (not a gap)" not in rows  # not declared headline
    cells = {r["label"]: r["cells"] for r in comparison(result)["chunks"][0]["rows"]}
    assert cells["Worst group accuracy"][1]["trend"] == "better"  # advvae: +0.05
    assert cells["Ward sensitivity spread (age_group)"][1]["trend"] == "better"  # advvae: -0.05


def test_methods_list_every_non_variant_result(result: AuditResult) -> None:
    computed = methods(result)["computed"]
    assert "Worst group accuracy" in computed  # the docs' example once vanished from this list
    assert "Ward sensitivity spread" in computed
    variants = {m.metric for a in result.arms for m in a.metrics if m.variant}
    assert variants == {"worst_group_auc"}
    assert "Worst group AUC" not in computed  # variants are not listed


def test_the_strongest_probe_is_the_summary_row(demo: AuditResult) -> None:
    """An attack probe stronger than the linear attribute probe is the one the summary shows."""
    result = demo.model_copy(deep=True)
    base = result.arm("baseline")
    assert base is not None
    linear = base.metric("attribute_probe_auc", "sex")
    assert linear is not None
    base.metrics.append(MetricResult(metric="attack_probe_auc", plugin="attack_probe", attribute="sex", role="probe",
                                     headline=True, value=linear.value + 0.02, ci_low=0.9, ci_high=0.99,
                                     details={"probe": "mlp"}))
    rows = {k.label: k for k in key_metrics(result)}
    value, _, _, note = rows["Probe AUC (sex)"].get(base)  # type: ignore[misc]
    assert value == pytest.approx(linear.value + 0.02) and note == "mlp probe"


@pytest.mark.parametrize("sample", ["quickstart", "custom-debiaser", "cxr-generators"])
def test_version_1_samples_are_upgraded(sample: str, tmp_path: Path) -> None:
    path = version_1_result(sample, tmp_path)
    raw = json.loads(path.read_text())
    result = read_result(path)
    assert result.schema_version == 2 and raw["schema_version"] == 1
    base = result.arm("baseline")
    assert base is not None
    roles = {m.metric: (m.role, m.headline, m.variant) for m in base.metrics}
    assert roles["roc_auc"] == ("value", True, False)
    assert roles["equal_opportunity_difference"] == ("gap", True, False)
    assert roles["roc_curve"][0] == "curve"
    assert roles.get("worst_group_auc", ("worst_group", True, True)) == ("worst_group", True, True)
    assert result.spec["name"] == raw["name"]  # the spec as data, parsed once by the reader
    old_sections = sum(len(a.get("sections") or []) for a in raw["arms"])
    assert sum(len(a.blocks) for a in result.arms) == old_sections


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.iterdir()) if SAMPLES.is_dir() else [])
def test_committed_samples_read_and_render(sample: str, tmp_path: Path) -> None:
    result = read_result(SAMPLES / sample / "result.json")
    assert result.schema_version == 2 and result.reference() is not None  # baseline, or the first given model
    assert "Executive summary" in render_html(result, tmp_path)


def test_a_version_1_sample_renders(tmp_path: Path) -> None:
    html = render_html(read_result(version_1_result("quickstart", tmp_path)), tmp_path)
    assert "Equal opportunity difference" in html and "Executive summary" in html
    assert "Mitigation comparison" not in html  # one arm: nothing to compare


def test_a_model_near_chance_gets_a_banner(demo: AuditResult, tmp_path: Path) -> None:
    from fairaudit.report.summary import near_chance

    assert near_chance(demo) == []
    assert "near chance" not in render_html(demo, tmp_path)
    result = demo.model_copy(deep=True)
    auc = result.arm("baseline").metric("roc_auc", "sex")  # type: ignore[union-attr]
    assert auc is not None
    auc.value, auc.ci_low, auc.ci_high = 0.55, 0.47, 0.63
    group = next(g for g in result.arm("advvae").metric("roc_auc", "sex").per_group if not g.too_small)  # type: ignore[union-attr]
    group.value = 0.58
    reasons = near_chance(result)
    assert reasons[0] == "baseline: task AUC 0.550 [0.470, 0.630] includes 0.5"
    assert reasons[1] == f"advvae: AUC 0.580 in group sex = {group.group} (below 0.6)"
    html = render_html(result, tmp_path)
    assert "A model here is near chance" in html and "includes 0.5" in html
