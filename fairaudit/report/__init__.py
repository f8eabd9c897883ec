"""Reports: ``result.json`` -> ``report.html`` and ``report.pdf`` from one jinja2 template.

``render_html(result, run_dir)`` returns the HTML; ``write_reports(result, run_dir)`` writes
``report.html``, ``report.pdf`` and ``figures/*.svg``.  WeasyPrint is imported only for PDFs.
"""

from fairaudit.report.render import render_html, write_reports

__all__ = ["render_html", "write_reports"]
