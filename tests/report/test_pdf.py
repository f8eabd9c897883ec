"""PDF report (WeasyPrint): text, page numbers, TOC, attachments, fonts, locked URL fetcher."""

from __future__ import annotations

import builtins
import json
import re
import sys
import urllib.request
from pathlib import Path

import pytest

from fairaudit.errors import ReportError
from fairaudit.results import AuditResult

pytestmark = pytest.mark.pdf
pypdf = pytest.importorskip("pypdf")
pytest.importorskip("weasyprint")

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00:~\x9bU"
    b"\x00\x00\x00\nIDATx\x9cc`\x00\x00\x00\x02\x00\x01H\xaf\xa4q\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AuditResult]:
    """The demo report written as PDF, with an identifier smuggled into the result."""
    from fairaudit.report import write_reports
    from fairaudit.testing.report_fixtures import demo_result

    run_dir = tmp_path_factory.mktemp("pdf_run")
    result = demo_result(run_dir)
    result.arms[0].metrics[0].details["patient_ids"] = ["PID-SECRET-0001", "PID-SECRET-0002"]
    written = write_reports(result, run_dir, formats=("pdf",))
    assert set(written) == {"pdf"} and not (run_dir / "report.html").exists()
    return written["pdf"], result


def _pages(path: Path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(path).pages]


def test_pdf_text_title_summary_page_numbers_and_toc(pdf: tuple[Path, AuditResult]) -> None:
    path, _ = pdf
    pages = _pages(path)
    first = re.sub(r"\s+", " ", pages[0])
    assert "Demo audit: pneumonia classifier" in first and "Executive summary" in first
    assert "FAIL" in first and "PASS" in first
    for i, text in enumerate(pages, start=1):
        assert f"Page {i} of {len(pages)}" in text
    toc = next(t for t in pages if "Contents" in t and "Appendix A: Provenance" in t)
    entries = dict(
        re.findall(
            r"^(Arm: \w+|Methods|Limitations|Appendix B: Audit spec)\s*\.+\s*(\d+)\s*$",
            toc,
            flags=re.MULTILINE,
        )
    )
    assert {
        "Arm: baseline",
        "Arm: advvae",
        "Arm: cafgan",
        "Methods",
        "Limitations",
        "Appendix B: Audit spec",
    } <= set(entries)
    # the page numbers in the table of contents point at the pages holding those chapters
    for title, number in entries.items():
        assert title in pages[int(number) - 1], (title, number)
    assert "CUDA out of memory" in pages[int(entries["Arm: cafgan"]) - 1]
    assert not any("PID-SECRET" in t for t in pages)


def test_pdf_attaches_spec_results_and_plugins(pdf: tuple[Path, AuditResult]) -> None:
    path, result = pdf
    attachments = pypdf.PdfReader(path).attachments
    assert {"spec.yaml", "result.json", "plugins.txt"} <= set(attachments)
    assert attachments["spec.yaml"][0].decode("utf-8") == result.spec_text
    attached = json.loads(attachments["result.json"][0])
    assert attached["name"] == result.name and len(attached["arms"]) == len(result.arms)
    assert "patient_ids" not in attached["dataset"]["summary"]["test"]
    assert b"PID-SECRET" not in attachments["result.json"][0]
    assert b"advvae==0.1.0" in attachments["plugins.txt"][0]


def test_pdf_is_pdfa3b_with_embedded_fonts(pdf: tuple[Path, AuditResult]) -> None:
    reader = pypdf.PdfReader(pdf[0])
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode("utf-8")
    assert re.search(r"pdfaid:part\W+3", xmp) and re.search(r"pdfaid:conformance\W+B", xmp)
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            if "/DescendantFonts" in font:
                font = font["/DescendantFonts"][0].get_object()
            descriptor = font["/FontDescriptor"].get_object()
            assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor), font["/BaseFont"]


def test_url_fetcher_serves_only_data_and_run_folder_files(tmp_path: Path) -> None:
    from fairaudit.report.pdf import URLRefused, resolve_url

    run_dir = tmp_path / "run"
    (run_dir / "figures").mkdir(parents=True)
    (run_dir / "figures" / "ok.png").write_bytes(PNG)
    (tmp_path / "secret.txt").write_text("secret")
    (run_dir / "figures" / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert resolve_url("data:text/plain;base64,aGk=", run_dir) == (b"hi", "text/plain")
    assert resolve_url((run_dir / "figures" / "ok.png").as_uri(), run_dir) == (PNG, "image/png")
    for url in (
        "file:///etc/passwd",
        (tmp_path / "secret.txt").as_uri(),
        (run_dir / "figures" / "link.txt").as_uri(),
        (run_dir / "figures" / ".." / ".." / "secret.txt").as_uri(),
        "http://example.com/a.png",
        "https://example.com/a.css",
        "ftp://example.com/x",
        "file://otherhost/etc/passwd",
    ):
        with pytest.raises(URLRefused):
            resolve_url(url, run_dir)


def test_pdf_renderer_never_fetches_outside_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairaudit.report.pdf import make_url_fetcher, render_pdf

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the report renderer tried to open a URL")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", no_network)
    run_dir = tmp_path / "run"
    (run_dir / "figures").mkdir(parents=True)
    (run_dir / "figures" / "ok.png").write_bytes(PNG)
    html = (
        '<html><body><p>x</p><img src="file:///etc/passwd"><img src="http://127.0.0.1:9/x.png">'
        '<img src="figures/ok.png"><img src="../outside.png">'
        '<link rel="stylesheet" href="https://example.com/s.css"></body></html>'
    )
    fetcher = make_url_fetcher(run_dir)
    data = render_pdf(html, run_dir, url_fetcher=fetcher)
    assert data.startswith(b"%PDF")
    refused = set(fetcher.refused)
    assert "file:///etc/passwd" in refused and "http://127.0.0.1:9/x.png" in refused
    assert "https://example.com/s.css" in refused
    assert any(u.endswith("/outside.png") for u in refused)
    assert not any(u.endswith("figures/ok.png") for u in refused)
    assert b"root:" not in data


def test_missing_weasyprint_is_a_clear_report_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from fairaudit.report.pdf import load_weasyprint

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "weasyprint":
            raise ImportError("No module named 'weasyprint'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "weasyprint", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ReportError, match=r'pip install "fairaudit\[pdf\]"'):
        load_weasyprint()
