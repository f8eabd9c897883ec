"""What a report may read and show: files inside the run folder, validated images, no identifiers.

Why: group names, captions and image paths come from specs and plugins; the report must not
become a way to read ``/etc/passwd`` into a PDF, fetch a URL, or leak patient identifiers.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any

#: Largest raster image inlined into a report (bytes).
MAX_IMAGE_BYTES = 20 * 1024 * 1024

_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
}
_DATA_URI = re.compile(r"^data:(image/(?:png|jpeg));base64,([A-Za-z0-9+/=\s]+)$")
#: Keys never copied into a report or its attachments (patient-level identifiers).
IDENTIFIER_KEYS = re.compile(
    r"^(?:(?:patient|subject|person|study|accession)[_ ]?(?:id|ids|number|numbers)|mrns?)$",
    re.IGNORECASE,
)


def resolve_inside(run_dir: Path, relative: str | Path) -> Path | None:
    """``run_dir / relative`` when it is an existing file inside ``run_dir`` (symlinks resolved)."""
    text = str(relative)
    if not text or "\x00" in text or "://" in text or text.startswith("data:"):
        return None
    rel = Path(text)
    if rel.is_absolute():
        return None
    root = run_dir.resolve()
    try:
        target = (root / rel).resolve()
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def sniff_image(data: bytes) -> str | None:
    """The MIME type of PNG or JPEG bytes, else ``None``."""
    for magic, mime in _MAGIC.items():
        if data.startswith(magic):
            return mime
    return None


def image_data_uri(data: bytes) -> str | None:
    """A ``data:`` URI for PNG/JPEG bytes (``None`` for anything else or too large)."""
    mime = sniff_image(data)
    if mime is None or len(data) > MAX_IMAGE_BYTES:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def inline_image(run_dir: Path, relative: str | Path) -> str | None:
    """A validated ``data:`` URI for an image file inside ``run_dir``; ``None`` when refused."""
    path = resolve_inside(run_dir, relative)
    if path is None or path.stat().st_size > MAX_IMAGE_BYTES:
        return None
    return image_data_uri(path.read_bytes())


def clean_data_uri(uri: str) -> str | None:
    """Re-encode a plugin's ``data:image/png;base64,...`` URI after checking its bytes."""
    match = _DATA_URI.match(uri.strip())
    if match is None:
        return None
    try:
        data = base64.b64decode(re.sub(r"\s+", "", match.group(2)), validate=True)
    except (binascii.Error, ValueError):
        return None
    return image_data_uri(data)


def scrub_identifiers(obj: Any) -> Any:
    """A copy of ``obj`` without keys that name patient-level identifiers (at any depth)."""
    if isinstance(obj, dict):
        return {
            k: scrub_identifiers(v)
            for k, v in obj.items()
            if not (isinstance(k, str) and IDENTIFIER_KEYS.match(k))
        }
    if isinstance(obj, list):
        return [scrub_identifiers(v) for v in obj]
    return obj
