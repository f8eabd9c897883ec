"""HTML -> PDF with WeasyPrint (imported lazily), a locked-down URL fetcher and attachments.

The fetcher serves ``data:`` URIs and ``file:`` paths inside the run folder only; everything
else (``http(s)``, ``ftp``, files elsewhere such as ``/etc/passwd``) is refused, so nothing in
user text or a plugin's figure path can make the renderer read or fetch it.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairaudit import atomic
from fairaudit.errors import ReportError

LOG = logging.getLogger("fairaudit.report")
PDF_VARIANT = "pdf/a-3b"


@dataclass(frozen=True)
class PdfAttachment:
    """A file embedded in the PDF (the spec, result.json...)."""

    name: str
    data: bytes
    description: str = ""
    relationship: str = "Source"


class URLRefused(ValueError):
    """The report renderer refused to read a URL."""


def load_weasyprint() -> Any:
    """Import WeasyPrint or raise :class:`ReportError` saying how to install it."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: Pango/cairo system libraries missing
        raise ReportError(
            "PDF reports need WeasyPrint and its system libraries (Pango): "
            'pip install "fairaudit[pdf]" '
            f"(import failed: {exc}). The HTML report does not need it: use --format html."
        ) from exc
    return weasyprint


def _data_uri(url: str) -> tuple[bytes, str]:
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise URLRefused("malformed data: URI")
    parts = header.split(";")
    mime = parts[0] or "text/plain"
    if "base64" in parts[1:]:
        return base64.b64decode(payload), mime
    return urllib.parse.unquote_to_bytes(payload), mime


def resolve_url(url: str, run_dir: Path) -> tuple[bytes, str]:
    """Bytes and MIME type of ``url`` if the report may read it; else raise :class:`URLRefused`."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return _data_uri(url)
    if scheme == "file":
        parsed = urllib.parse.urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise URLRefused(f"refused {url!r}: remote file URL")
        path = Path(urllib.request.url2pathname(parsed.path))
        root = run_dir.resolve()
        try:
            target = path.resolve()
        except (OSError, RuntimeError) as exc:
            raise URLRefused(f"refused {url!r}: {exc}") from exc
        if not target.is_relative_to(root):
            raise URLRefused(
                f"refused {url!r}: reports only read files inside the run folder {root}"
            )
        if not target.is_file():
            raise URLRefused(f"refused {url!r}: no such file in the run folder")
        return target.read_bytes(), mimetypes.guess_type(target.name)[
            0
        ] or "application/octet-stream"
    raise URLRefused(f"refused {url!r}: reports never fetch {scheme or 'relative'} URLs")


def make_url_fetcher(run_dir: Path) -> Any:
    """A WeasyPrint URL fetcher bound to ``run_dir``; refused URLs are listed in ``.refused``."""
    weasyprint = load_weasyprint()
    base = getattr(weasyprint.urls, "URLFetcher", None)
    run_dir = Path(run_dir)

    if isinstance(base, type):  # WeasyPrint >= 67: a class with fetch() returning a response

        class RunDirFetcher(base):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                super().__init__(fail_on_errors=False)
                self.refused: list[str] = []

            def fetch(self, url: str, headers: Any = None) -> Any:
                try:
                    data, mime = resolve_url(url, run_dir)
                except URLRefused:
                    self.refused.append(url)
                    LOG.warning("report: refused to fetch %s", url[:200])
                    raise
                return weasyprint.urls.URLFetcherResponse(url, data, {"Content-Type": mime})

        return RunDirFetcher()

    refused: list[str] = []

    def fetch(url: str) -> dict[str, Any]:  # WeasyPrint < 67: a function returning a dict
        try:
            data, mime = resolve_url(url, run_dir)
        except URLRefused:
            refused.append(url)
            raise
        return {"string": data, "mime_type": mime, "redirected_url": url}

    fetch.refused = refused  # type: ignore[attr-defined]
    return fetch


def render_pdf(
    html: str, run_dir: Path, attachments: Sequence[PdfAttachment] = (), *, url_fetcher: Any = None
) -> bytes:
    """The PDF of ``html`` (base URL ``run_dir``), PDF/A-3b with ``attachments`` when possible."""
    weasyprint = load_weasyprint()
    fetcher = url_fetcher or make_url_fetcher(run_dir)
    base_url = Path(run_dir).resolve().as_uri() + "/"
    document = weasyprint.HTML(
        string=html, base_url=base_url, url_fetcher=fetcher, media_type="print"
    )
    def attachment_files() -> list[Any]:  # a new list for each attempt, none shared with a failed one
        return [
            weasyprint.Attachment(
                string=a.data,
                name=a.name,
                description=a.description or a.name,
                relationship=a.relationship,
                url_fetcher=fetcher,
            )
            for a in attachments
        ]

    try:
        return document.write_pdf(attachments=attachment_files(), pdf_variant=PDF_VARIANT)
    except Exception as exc:  # a PDF/A constraint this document cannot meet: plain PDF instead
        LOG.warning("report: %s not possible (%s); writing a plain PDF", PDF_VARIANT, exc)
        return document.write_pdf(attachments=attachment_files())


def write_pdf(
    html: str, run_dir: Path, target: Path, attachments: Sequence[PdfAttachment] = ()
) -> Path:
    """Render and write ``target`` atomically; a renderer crash becomes a :class:`ReportError`."""
    try:
        data = render_pdf(html, run_dir, attachments)
    except ReportError:
        raise
    except Exception as exc:  # WeasyPrint layout bugs must not lose the audit that produced them
        raise ReportError(
            f"PDF rendering failed ({type(exc).__name__}: {exc}); the HTML report is unaffected"
        ) from exc
    return atomic.write_bytes(target, data)
