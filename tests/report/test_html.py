"""HTML report: summary and arms, escaping, identifiers, plugin sections, robustness."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, ClassVar

import pytest
from markupsafe import escape

from fairaudit.base import BaseReportSection
from fairaudit.blocks import to_blocks
from fairaudit.report import render_html, write_reports
from fairaudit.report.fmt import num
from fairaudit.report.render import environment
from fairaudit.results import ArmResult, AuditResult, MetricResult

EVIL = '<script>alert("pwned")</script>'


def _text(html: str) -> str:
    """Visible text (tags dropped, whitespace collapsed) for phrase checks."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _light(result: AuditResult) -> AuditResult:
    """``result`` without its curve metrics (fewer figures: faster tests that do not need them)."""
    for arm in result.arms:
        arm.metrics = [m for m in arm.metrics if m.metric not in ("roc_curve", "calibration_curve")]
    return result


def _rename_group(result: AuditResult, old: str, new: str) -> None:
    for arm in result.arms:
        for m in arm.metrics:
            for g in m.per_group:
                if g.group == old:
                    g.group = new
            curves = m.details.get("curves")
            if isinstance(curves, dict) and old in curves:
                curves[new] = curves.pop(old)
    for split in result.dataset.summary.values():
        for rows in split.groups.values():
            for row in rows:
                if row.group == old:
                    row.group = new


def test_summary_shows_every_verdict_with_its_interval(demo: AuditResult, demo_html: str) -> None:
    text = _text(demo_html)
    assert "Executive summary" in text
    outcomes = {v.outcome for v in demo.verdicts}
    assert outcomes == {"pass", "fail", "inconclusive", "too_small"}  # the fixture covers them all
    for label in ("PASS", "FAIL", "INCONCLUSIVE", "NO VERDICT"):
        assert label in text
    failing = next(v for v in demo.verdicts if v.outcome == "fail")
    assert f"{num(failing.value)} [{num(failing.ci_low)}, {num(failing.ci_high)}]" in text
    assert "1 of 6 threshold checks FAIL" in text  # roc_auc (one overall value) is judged once per arm
    assert "groups too small to judge" in text
    # the mitigation comparison table: one row per arm with the task AUC change against the baseline
    base_auc = demo.arm("baseline").metric("roc_auc").value
    deb_auc = demo.arm("advvae").metric("roc_auc").value
    assert "Mitigation comparison" in text
    assert f"{num(deb_auc)} ({num(deb_auc - base_auc)})" in text
    assert "Equal opportunity difference (TPR gap) (sex): FAIL → INCONCLUSIVE" in text


def test_every_arm_and_the_failed_arms_error_are_shown(demo: AuditResult, demo_html: str) -> None:
    for arm in demo.arms:
        assert f'id="arm{demo.arms.index(arm)}-' in demo_html
        assert f"Arm: {arm.name}" in demo_html
    failed = next(a for a in demo.arms if a.status == "failed")
    assert str(escape(failed.error)) in demo_html
    assert "This arm failed" in demo_html
    for warning in demo.warnings:
        assert str(escape(warning)) in demo_html


def test_group_tables_probes_and_sections(demo: AuditResult, demo_html: str) -> None:
    text = _text(demo_html)
    auc = demo.arm("baseline").metric("roc_auc", "sex")
    female = next(g for g in auc.per_group if g.group == "F")
    assert f"{num(female.value)} [{num(female.ci_low)}, {num(female.ci_high)}]" in text
    assert "Attribute probe AUC" in text and "Shuffled-label score" in text
    # plugin sections: curve -> inline SVG, table, text, image grid -> data URI,
    # unknown kind -> notice
    assert "advvae: adversaries at the end of training" in text
    assert "32 latent dimensions." in text
    assert "block kind &#39;hologram&#39; is not supported" in demo_html
    assert re.search(r'<img class="raster" src="data:image/png;base64,[A-Za-z0-9+/=]+"', demo_html)
    assert "checkpoints/advvae.safetensors" in text
    assert demo_html.count("<svg ") >= 10


def test_user_text_is_escaped_everywhere(result: AuditResult, tmp_path: Path) -> None:
    _rename_group(result, "F", EVIL)
    result.title = 'Audit <img src="file:///etc/passwd">'
    result.dataset.name = "<b>data</b>"
    result.dataset.description = "<iframe src='http://example.com'></iframe>"
    result.warnings.append(EVIL)
    result.spec_text += f"# {EVIL}\n"
    result.arms[0].blocks = to_blocks([
        {"kind": "text", "title": EVIL, "text": EVIL},
        {"kind": "table", "title": "t", "columns": [EVIL], "rows": [[EVIL]]},
    ], "test")[0]
    html = render_html(result, tmp_path)
    assert "<script" not in html
    assert "<iframe" not in html and "<b>data</b>" not in html
    assert '<img src="file:' not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
    # inside the figures the group name is XML-escaped text, not markup
    assert '&lt;script&gt;alert("pwned")&lt;/script&gt; (AUC' in html


def test_unknown_dataset_keys_and_identifiers_never_render(
    result: AuditResult, tmp_path: Path
) -> None:
    """A version-1 result.json (untyped dicts) with identifiers and unknown keys renders without
    them; a version-2 one with unknown keys is refused, naming the problem."""
    import json

    from fairaudit.errors import ReportError
    from fairaudit.report.render import load_result

    ids = [f"PID-SECRET-{i:04d}" for i in range(5)]
    data = _light(result).model_dump(mode="json")
    data["dataset"]["summary"]["test"]["patient_ids"] = ids
    data["dataset"]["patient_ids"] = ids
    data["dataset"]["secret_column"] = "UNKNOWN-KEY-VALUE"
    data["provenance"]["patient_ids"] = ids
    (tmp_path / "result.json").write_text(json.dumps({**data, "schema_version": 2}))
    with pytest.raises(ReportError, match=r"not a valid fairaudit result\.json"):
        load_result(tmp_path)
    (tmp_path / "result.json").write_text(json.dumps({**data, "schema_version": 1}))
    html = render_html(load_result(tmp_path), tmp_path)
    assert "PID-SECRET" not in html
    assert "UNKNOWN-KEY-VALUE" not in html


class _Note(BaseReportSection):
    name = "note_section"
    title = "Reviewer note"
    template = "<p class='note'>{{ message }} for {{ arm_name }}</p>"

    def context(self, result: AuditResult, arm: ArmResult | None) -> dict[str, Any] | None:
        return {"message": "<em>checked</em>", "arm_name": arm.name if arm else "the whole audit"}


class _Broken(BaseReportSection):
    name = "broken_section"
    title = "Broken"
    template = "{{ undefined_variable }}"
    order: ClassVar[int] = 200

    def context(self, result: AuditResult, arm: ArmResult | None) -> dict[str, Any] | None:
        return {} if arm is None else None


def test_plugin_sections_are_rendered_escaped_and_isolated(
    result: AuditResult, demo_dir: Path
) -> None:
    demo = _light(result)
    html = render_html(demo, demo_dir, plugin_sections=[_Note(), (_Broken(),)])
    assert "&lt;em&gt;checked&lt;/em&gt; for the whole audit" in html
    ok_arms = [a.name for a in demo.arms if a.status == "ok"]
    for name in ok_arms:
        assert f"&lt;em&gt;checked&lt;/em&gt; for {name}" in html
    failed = next(a.name for a in demo.arms if a.status == "failed")
    assert f"checked&lt;/em&gt; for {failed}" not in html
    assert html.count(">Reviewer note</a>") == 1  # in the table of contents, once
    # StrictUndefined: the broken section shows its error; the report still renders
    assert (
        "undefined_variable" in html
        and "The report section of plugin broken_section failed" in html
    )
    assert "Appendix B: Audit spec" in html


def test_environment_is_strict_and_autoescaping() -> None:
    env = environment()
    assert env.from_string("{{ x }}").render(x="<a>") == "&lt;a&gt;"
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ missing }}").render()
    assert env.get_template("base.html.j2").environment.autoescape


def test_minimal_result_renders(tmp_path: Path) -> None:
    bare = AuditResult(
        name="bare",
        title="Bare audit",
        created="2026-01-01T00:00:00",
        arms=[
            ArmResult(
                name="baseline",
                kind="baseline",
                metrics=[
                    MetricResult(metric="roc_auc", plugin="m", value=0.7, status="ok"),
                    MetricResult(
                        metric="x", plugin="m", status="error", notes=["ValueError: boom"]
                    ),
                ],
            )
        ],
    )
    html = render_html(bare, tmp_path)
    assert "Bare audit" in html and "No thresholds were declared" in html
    assert "ValueError: boom" in html and "The spec text was not recorded" in html


def test_images_outside_the_run_folder_are_refused(result: AuditResult, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "figures").mkdir(parents=True)
    outside = tmp_path / "outside.png"
    outside.write_bytes((Path(__file__).parent / "conftest.py").read_bytes())
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    (tmp_path / "secret.png").write_bytes(png)
    (run_dir / "figures" / "link.png").symlink_to(tmp_path / "secret.png")
    (run_dir / "figures" / "fake.png").write_text("not an image")
    result.arms[0].blocks = to_blocks([
        {"kind": "image_grid", "title": "escape", "image": "../secret.png"},
        {"kind": "image_grid", "title": "absolute", "image": "/etc/passwd"},
        {"kind": "image_grid", "title": "link", "image": "figures/link.png"},
        {"kind": "image_grid", "title": "fake", "image": "figures/fake.png"},
        {"kind": "image_grid", "title": "url", "path": "http://example.com/x.png"},
        {"kind": "image_grid", "title": "bad uri", "data_uri": "data:image/png;base64,PHN2Zz4="},
    ], "test")[0]
    result.arms[0].artefacts = {"passwd": "/etc/passwd.png"}
    result.arms[1].blocks, result.arms[1].artefacts = [], {}
    for arm in result.arms:
        arm.metrics = []
    html = render_html(result, run_dir)
    assert "data:image" not in html
    assert html.count("not shown") == 7


def test_write_reports_html_only(demo: AuditResult, tmp_path: Path) -> None:
    written = write_reports(demo, tmp_path, formats=("html",))
    assert set(written) == {"html"} and written["html"] == tmp_path / "report.html"
    assert written["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    svgs = sorted(p.name for p in (tmp_path / "figures").glob("*.svg"))
    assert any("forest" in n for n in svgs) and any("roc" in n for n in svgs)
    assert not list(tmp_path.rglob("*.tmp"))
    # re-rendering from result.json alone gives the same HTML
    (tmp_path / "result.json").write_text(demo.model_dump_json(), encoding="utf-8")
    again = write_reports(tmp_path, tmp_path / "again", formats=("html",))
    assert again["html"].read_text(encoding="utf-8") == written["html"].read_text(encoding="utf-8")
    # ... and byte-identical, valid SVG figures
    first = {p.name: p.read_bytes() for p in (tmp_path / "figures").glob("*.svg")}
    second = {p.name: p.read_bytes() for p in (tmp_path / "again" / "figures").glob("*.svg")}
    assert len(first) >= 10 and first == second
    for data in first.values():
        assert ET.fromstring(data).tag == "{http://www.w3.org/2000/svg}svg"


def test_comparison_marks_only_changes_beyond_noise(result: AuditResult, tmp_path: Path) -> None:
    """Paired changes carry their own interval; bold ("clear") only where it excludes zero,
    never on the baseline column (a template once read ``c.clear`` as the dict method)."""
    from fairaudit.report import render_html
    from fairaudit.report.summary import comparison
    from fairaudit.results import MetricResult

    arm = result.arm("advvae")
    assert arm is not None
    base_auc = result.arm("baseline").metric("roc_auc").value  # type: ignore[union-attr]
    auc_change = arm.metric("roc_auc").value - base_auc  # type: ignore[union-attr,operator]
    base_eod = result.arm("baseline").metric("equal_opportunity_difference", "sex").value  # type: ignore[union-attr]
    eod_change = arm.metric("equal_opportunity_difference", "sex").value - base_eod  # type: ignore[union-attr,operator]
    arm.versus_baseline = [
        MetricResult(metric="roc_auc", plugin="fairaudit", value=auc_change, ci_low=-0.031, ci_high=0.027,
                     role="change", derived_from="roc_auc", details={"excludes_zero": False}),
        MetricResult(metric="equal_opportunity_difference", plugin="fairaudit", attribute="sex", value=eod_change,
                     ci_low=eod_change - 0.0123, ci_high=eod_change + 0.0123, role="change",
                     derived_from="equal_opportunity_difference", details={"excludes_zero": True}),
        # a change on other groups than the displayed values (e.g. an older result): not used
        MetricResult(metric="worst_group_auc", plugin="fairaudit", value=0.5, ci_low=0.4, ci_high=0.6,
                     role="change", derived_from="worst_group_auc", details={"excludes_zero": True}),
    ]
    table = comparison(result)
    assert table["has_paired"]
    rows = {r["label"]: r["cells"] for r in table["chunks"][0]["rows"]}
    names = [c["arm"] for c in table["chunks"][0]["columns"]]
    base_i, arm_i = names.index("baseline"), names.index("advvae")
    assert rows["Task AUC"][arm_i]["delta_ci"] == "[−0.031, 0.027]"
    assert rows["Task AUC"][arm_i]["beyond_noise"] is False
    assert rows["EOD (sex)"][arm_i]["beyond_noise"] is True
    assert rows["EOD (sex)"][arm_i]["delta_ci"]
    assert rows["Worst-group AUC"][arm_i]["paired"] is False and rows["Worst-group AUC"][arm_i]["delta_ci"] == ""
    assert not any(cells[base_i]["beyond_noise"] for cells in rows.values())
    html = render_html(result, tmp_path)
    section = html[html.index("Mitigation comparison") : html.index("Changes in brackets")]
    marked = section.count(" clear\"")
    assert marked >= 1 and marked == sum(cells[arm_i]["beyond_noise"] for cells in rows.values())
    assert "[−0.031, 0.027]" in section and "paired bootstrap" in html
    from fairaudit.report.summary import changes

    moves = next(c for c in changes(result) if c["arm"] == "advvae")["moves"]
    assert any(m.startswith("Task AUC:") and m.endswith("paired CI [−0.031, 0.027])") for m in moves)
    assert not any(m.startswith("Worst-group AUC:") and "paired CI" in m for m in moves)
