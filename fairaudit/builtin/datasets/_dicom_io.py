"""DICOM images for ``image_folder`` (pydicom, the optional extra ``fairaudit[dicom]``).

A grey DICOM image becomes intensities in ``[0, 1]`` the way a viewer shows it:

1. the stored values go through the modality transform (``RescaleSlope`` / ``RescaleIntercept``,
   or a Modality LUT), e.g. CT numbers in Hounsfield units;
2. a VOI window (centre ``c``, width ``w``) maps them to ``[0, 1]`` with the DICOM linear function
   (PS3.3 C.11.2.1.2): values below ``c - 0.5 - (w - 1) / 2`` are 0, above ``c - 0.5 + (w - 1) / 2``
   are 1, linear between (the file's ``VOILUTFunction`` ``LINEAR_EXACT`` or ``SIGMOID`` is honoured
   for the file's own window).  The window is the file's first one (``dicom_window: file``, the
   default) or the spec's (``dicom_window: {center: 40, width: 400}``);
3. without a window (``dicom_window: none``, or a file that has none) the whole range the stored
   bits can hold (``BitsStored``, signed or not, through the modality transform) maps to ``[0, 1]``,
   the same scale for every image of that bit depth; ``dicom_window: minmax`` scales each image by
   its own minimum and maximum instead (as for 16-bit PNGs);
4. ``MONOCHROME1`` (minimum shown white) is inverted, so that bright means dense in every image.

Colour images (``RGB``, ``YBR_*``, converted to RGB) are scaled by their stored bit range and not
windowed.  Multi-frame files are refused unless ``dicom_frame`` names the frame to read (0-based).
Compressed transfer syntaxes are read when an installed pydicom decoder handles them (RLE; JPEG
baseline and JPEG 2000 through Pillow; more with ``pylibjpeg`` or ``python-gdcm``), else refused
with the file and the syntax named.  VOI LUT sequences and ``PALETTE COLOR`` are not supported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

#: Suffixes read as DICOM (files without a suffix are, too, when they carry the ``DICM`` marker).
DICOM_SUFFIXES = (".dcm", ".dicom")
GREY = ("MONOCHROME1", "MONOCHROME2")
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
#: The Pillow-like "mode" the folder loader records for a DICOM image (mixed-depth warning).
MODE = "DICOM"


@with_config(ConfigDict(extra="forbid"))
class DicomWindow(TypedDict):
    """A VOI window: centre and width in the modality's units (e.g. Hounsfield units)."""

    center: float
    width: float


#: ``dicom_window`` of ``image_folder``.
WindowChoice = Literal["file", "none", "minmax"] | DicomWindow


class DicomError(ValueError):
    """A DICOM file that cannot be read as an image (the message says why)."""


def is_dicom(path: Path) -> bool:
    """``True`` for a ``.dcm`` / ``.dicom`` file, or a file without suffix holding the ``DICM``
    marker after its 128-byte preamble."""
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return True
    if suffix:
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def check_window(window: Any) -> list[str]:
    """Problems with a ``dicom_window`` parameter (static)."""
    if isinstance(window, dict) and not float(window.get("width", 0)) >= 1:
        return [f"dicom_window: its 'width' must be >= 1 (DICOM's linear window), got {window.get('width')}"]
    return []


def _pydicom() -> Any:
    try:
        import pydicom
    except ImportError:
        raise DicomError("reading DICOM files needs pydicom, which is not installed; install it with "
                         "pip install 'fairaudit[dicom]'") from None
    return pydicom


def open_dataset(path: Path, *, header_only: bool = False) -> Any:
    """The pydicom dataset of ``path`` (pixel values left on disk with ``header_only``)."""
    pydicom = _pydicom()
    try:
        return pydicom.dcmread(path, defer_size="4 KB" if header_only else None)
    except pydicom.errors.InvalidDicomError as exc:
        raise DicomError(f"not a DICOM file ({exc})") from None
    except Exception as exc:  # a damaged file can fail in many ways inside pydicom
        raise DicomError(f"not a readable DICOM file ({type(exc).__name__}: {exc})") from None


def check_dataset(ds: Any, frame: int | None) -> None:
    """Raise :class:`DicomError` unless ``ds`` is an image this module reads (header only)."""
    _require_pixel_data(ds)
    _require_decoder(ds)
    _require_photometric(ds)
    _require_frame(ds, frame)


def _require_pixel_data(ds: Any) -> None:
    """Refuse a DICOM without pixel data (a report, a structured document ...), naming its kind."""
    if any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        return
    parts = [f"SOP class {getattr(ds.SOPClassUID, 'name', ds.SOPClassUID)!r}"] if "SOPClassUID" in ds else []
    parts += [f"modality {ds.Modality!r}"] if "Modality" in ds else []
    kind = ", ".join(parts)
    raise DicomError(f"a DICOM file without pixel data{f' ({kind})' if kind else ''}: not an image")


def _require_decoder(ds: Any) -> None:
    """Refuse a compressed transfer syntax that no installed pydicom decoder reads."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_compressed and not _can_decode(syntax):
        raise DicomError(f"compressed with {syntax.name} ({syntax}), which no installed DICOM decoder reads; "
                         "install pylibjpeg[all] or python-gdcm, or decompress the files first "
                         "(e.g. gdcmconv --raw IN OUT)")


def _require_photometric(ds: Any) -> None:
    """Refuse a ``PhotometricInterpretation`` that is neither grey nor a supported colour one."""
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in GREY + COLOUR:
        raise DicomError(f"PhotometricInterpretation {photometric or '(none)'!r} is not supported; "
                         f"expected one of {', '.join(GREY + COLOUR)}")


def _require_frame(ds: Any, frame: int | None) -> None:
    """Refuse a multi-frame file unless ``frame`` names one of its frames."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1 and frame is None:
        raise DicomError(f"a multi-frame DICOM ({frames} frames); set params.dicom_frame to the frame to "
                         "read from every multi-frame file (0 = the first)")
    if frame is not None and frames > 1 and not 0 <= frame < frames:
        raise DicomError(f"dicom_frame {frame} is out of range: the file has {frames} frames (0 to {frames - 1})")


def _can_decode(syntax: Any) -> bool:
    from pydicom.pixels import get_decoder

    try:
        return bool(get_decoder(syntax).is_available)
    except NotImplementedError:
        return False


def read_dicom(path: Path, *, window: WindowChoice = "file", frame: int | None = None) -> np.ndarray:
    """Intensities of the DICOM image at ``path`` in ``[0, 1]``: float32 ``(H, W)`` (grey) or
    ``(H, W, 3)`` (colour), as described in the module's docstring."""
    from pydicom.pixels import apply_modality_lut, pixel_array

    ds = open_dataset(path)
    check_dataset(ds, frame)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    try:
        raw = pixel_array(ds, index=frame if frames > 1 else None)
    except Exception as exc:  # truncated or malformed pixel data
        raise DicomError(f"cannot decode the pixel data ({type(exc).__name__}: {exc})") from None
    photometric = str(ds.PhotometricInterpretation).strip()
    if photometric in COLOUR:
        top = float(2 ** int(ds.get("BitsStored", 8)) - 1)
        return np.clip(np.asarray(raw, dtype=np.float64) / top, 0.0, 1.0).astype(np.float32)
    if raw.ndim != 2:
        raise DicomError(f"expected one grey frame, got pixel data of shape {raw.shape}")
    values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
    grey = _to_unit(values, ds, window, raw.dtype.kind == "f")
    if photometric == "MONOCHROME1":
        grey = 1.0 - grey
    return grey.astype(np.float32)


def _to_unit(values: np.ndarray, ds: Any, window: WindowChoice, floating: bool) -> np.ndarray:
    """Modality values mapped to ``[0, 1]`` by a window, the stored range or min-max."""
    if isinstance(window, dict):
        return voi_window(values, float(window["center"]), float(window["width"]))
    if window == "file" and "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
        function = str(ds.get("VOILUTFunction", "LINEAR")).strip().upper() or "LINEAR"
        return voi_window(values, center, width, function)
    if window == "minmax" or floating:
        lo, hi = float(values.min()), float(values.max())
        return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    lo, hi = stored_range(ds)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(values)


def stored_range(ds: Any) -> tuple[float, float]:
    """The lowest and highest modality value the stored bits can hold (``BitsStored``, signed when
    ``PixelRepresentation`` is 1), through the modality transform."""
    from pydicom.pixels import apply_modality_lut

    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    ends = np.asarray(apply_modality_lut(np.array([lo, hi], dtype=np.int64), ds), dtype=np.float64)
    return float(ends.min()), float(ends.max())


def voi_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """DICOM's VOI window (PS3.3 C.11.2.1.2-3) with output range ``[0, 1]``."""
    if not width > 0 or (function not in ("SIGMOID", "LINEAR_EXACT") and width < 1):
        raise DicomError(f"the window width must be >= 1 (> 0 for {function}), got {width:g}")
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((values - center) / width + 0.5, 0.0, 1.0)
    low = center - 0.5 - (width - 1) / 2
    out = np.clip((values - (center - 0.5)) / max(width - 1, 1e-12) + 0.5, 0.0, 1.0)
    out[values <= low] = 0.0
    return out


def _first(value: Any) -> float:
    """The first of a possibly multi-valued DICOM number."""
    try:
        return float(value[0])
    except (TypeError, IndexError):
        return float(value)
