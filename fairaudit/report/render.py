"""Render ``result.json`` into ``report.html`` and ``report.pdf`` from one jinja2 template.

The report is built from an :class:`~fairaudit.results.AuditResult` alone (plus image files
inside the run folder), so ``fairaudit report RUN_DIR`` re-renders without retraining.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from fairaudit import atomic
from fairaudit.base import BaseReportSection
from fairaudit.caps import bounded_warnings
from fairaudit.errors import ReportError
from fairaudit.report import methods, summary
from fairaudit.report.arms import arm_context
from fairaudit.report.blocks import FigureSink
from fairaudit.report.fmt import slug
from fairaudit.report.safety import scrub_identifiers
from fairaudit.results import AuditResult, read_result

LOG = logging.getLogger("fairaudit.report")
FORMATS = ("html", "pdf")
STYLESHEETS = ("base.css", "screen.css", "print.css")


def environment() -> jinja2.Environment:
    """The report's jinja2 environment: package templates, autoescaping, strict undefined."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("fairaudit", "report/templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2"), default_for_string=True, default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _stylesheets(env: jinja2.Environment) -> dict[str, Markup]:
    assert env.loader is not None
    out = {}
    for name in STYLESHEETS:
        source, _, _ = env.loader.get_source(env, name)
        out[name.split(".")[0]] = Markup(source)  # our own package data, not user input
    return out


def _section_instances(sections: Iterable[Any] | None) -> list[BaseReportSection]:
    out = []
    for item in sections or []:
        obj = item[0] if isinstance(item, tuple) else item
        if isinstance(obj, BaseReportSection):
            out.append(obj)
        else:
            LOG.warning("report: ignoring %r, not a BaseReportSection", obj)
    return sorted(out, key=lambda s: (getattr(s, "order", 100), getattr(s, "name", "")))


def _render_plugin(
    env: jinja2.Environment, section: BaseReportSection, result: AuditResult, arm: Any
) -> dict[str, Any] | None:
    title = str(getattr(section, "title", "") or getattr(section, "name", "plugin section"))
    try:
        variables = section.context(result, arm)
        if variables is None:
            return None
        html = env.from_string(section.template).render(**variables)
    except Exception as exc:  # a broken plugin section is shown as such; the report still renders
        LOG.warning("report section %s failed: %s", getattr(section, "name", section), exc)
        return {
            "title": title,
            "html": None,
            "error": f"{type(exc).__name__}: {exc}",
            "plugin": str(getattr(section, "name", "")),
        }
    return {
        "title": title,
        "html": Markup(html),
        "error": "",
        "plugin": str(getattr(section, "name", "")),
    }


def build_context(
    result: AuditResult,
    run_dir: Path,
    plugin_sections: Iterable[Any] | None,
    env: jinja2.Environment,
    sink: FigureSink,
) -> dict[str, Any]:
    """All template variables (every value display-ready)."""
    arms = [arm_context(result, arm, i, run_dir, sink) for i, arm in enumerate(result.arms)]
    extra: list[dict[str, Any]] = []
    for section in _section_instances(plugin_sections):
        rendered = _render_plugin(env, section, result, None)
        if rendered is not None:
            rendered["id"] = (
                f"plugin-{slug(rendered['plugin'] or rendered['title'])}-{len(extra) + 1}"
            )
            extra.append(rendered)
        for arm, ctx in zip(result.arms, arms, strict=True):
            if (
                arm.status == "ok"
                and (part := _render_plugin(env, section, result, arm)) is not None
            ):
                ctx["plugin_sections"].append(part)
    cross = summary.cross_figures(result, sink)
    comparison = summary.comparison(result)
    toc = [("summary", "Executive summary")]
    has_comparison = len(summary.comparable_arms(result)) >= 2
    if has_comparison:
        toc.append(("comparison", "Comparison across arms"))
    toc += [(a["id"], f"Arm: {a['name']}") for a in arms]
    toc += [(e["id"], e["title"]) for e in extra]
    toc += [
        ("methods", "Methods"),
        ("limitations", "Limitations"),
        ("provenance", "Appendix A: Provenance"),
        ("spec", "Appendix B: Audit spec"),
    ]
    return {
        "title": result.title,
        "name": result.name,
        "created": result.created,
        "version": result.provenance.fairaudit_version,
        "overview": methods.overview(result),
        "verdicts": summary.verdicts(result),
        "gaps": summary.largest_gaps(result),
        "near_chance": summary.near_chance(result),
        "comparison": comparison,
        "changes": summary.changes(result),
        "warnings": bounded_warnings(result.warnings),
        "small_groups": sorted({g for a in arms for g in a["small"]}),
        "cross": cross,
        "has_comparison": has_comparison,
        "arms": arms,
        "extra_sections": extra,
        "methods": methods.methods(result),
        "limitations": methods.limitations(result),
        "provenance": methods.provenance(result),
        "spec_text": result.spec_text,
        "toc": [{"id": i, "title": t} for i, t in toc],
        "css": _stylesheets(env),
    }


def render(
    result: AuditResult,
    run_dir: Path,
    plugin_sections: Iterable[Any] | None = None,
) -> tuple[str, dict[str, str]]:
    """The HTML text and the figures (``name.svg`` -> SVG text) of the report."""
    env = environment()
    sink = FigureSink()
    context = build_context(result, Path(run_dir), plugin_sections, env, sink)
    html = env.get_template("base.html.j2").render(**context)
    return html, sink.files


def render_html(
    result: AuditResult, run_dir: Path, *, plugin_sections: Iterable[Any] | None = None
) -> str:
    """The report as one self-contained HTML document (figures inlined)."""
    return render(result, run_dir, plugin_sections)[0]


def load_result(source: AuditResult | str | Path) -> AuditResult:
    """An :class:`AuditResult` from itself, a ``result.json`` path, or a run folder."""
    if isinstance(source, AuditResult):
        return source
    path = Path(source)
    if path.is_dir():
        path = path / "result.json"
    try:
        return read_result(path)
    except FileNotFoundError as exc:
        raise ReportError(f"{path} does not exist; is it a fairaudit run folder?") from exc
    except ValueError as exc:
        raise ReportError(f"{path} is not a valid fairaudit result.json: {exc}") from exc


def attachments(result: AuditResult) -> list[Any]:
    """Files embedded in the PDF: the spec as given, result.json (identifiers scrubbed), plugins."""
    from fairaudit.report.pdf import PdfAttachment

    data = scrub_identifiers(result.model_dump(mode="json"))
    lines = [f"{k}=={v}" if v else str(k) for k, v in result.provenance.plugins.items()]
    files = [
        PdfAttachment(
            "result.json",
            (json.dumps(data, indent=2) + "\n").encode("utf-8"),
            "Audit results (fairaudit result.json)",
            "Data",
        )
    ]
    if result.spec_text:
        files.insert(
            0,
            PdfAttachment(
                "spec.yaml", result.spec_text.encode("utf-8"), "Audit spec as given", "Source"
            ),
        )
    files.append(
        PdfAttachment(
            "plugins.txt",
            ("\n".join(lines) + "\n").encode("utf-8"),
            "Plugins and versions used",
            "Source",
        )
    )
    return files


def write_reports(
    result_path_or_result: AuditResult | str | Path,
    run_dir: Path,
    formats: Sequence[str] = FORMATS,
    plugin_sections: Iterable[Any] | None = None,
) -> dict[str, Path]:
    """Write ``report.html``, ``report.pdf`` and ``figures/*.svg`` into ``run_dir``, atomically."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ReportError(f"unknown report format(s) {unknown}; choose from {list(FORMATS)}")
    result = load_result(result_path_or_result)
    run_dir = Path(run_dir)
    html, figure_files = render(result, run_dir, plugin_sections)
    for name, svg in figure_files.items():
        atomic.write_text(run_dir / "figures" / name, svg)
    written: dict[str, Path] = {}
    if "html" in formats:
        written["html"] = atomic.write_text(run_dir / "report.html", html)
    if "pdf" in formats:
        from fairaudit.report.pdf import write_pdf

        written["pdf"] = write_pdf(html, run_dir, run_dir / "report.pdf", attachments(result))
    return written
