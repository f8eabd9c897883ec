"""The bad-input corpus: committed text files (``corpus/``) plus binary files made at test time.

``corpus`` copies ``corpus/`` into a temporary folder and writes there what is binary or
deliberately not UTF-8: images of mixed sizes and modes, a truncated PNG, NPZ packs (one with a
pickle that would create a marker file if it were ever unpickled), Latin-1 / cp1252 CSVs, DICOM
files (images, one without pixel data, one multi-frame), torch weight files (a pickle, a list),
and specs that are not UTF-8 text.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest

CORPUS = Path(__file__).resolve().parent / "corpus"


class Payload:
    """Unpickling this creates ``path`` (the proof that a pickle was executed)."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def _png_bytes(mode: str, size: tuple[int, int], level: float, rng: np.random.Generator) -> bytes:
    from PIL import Image

    arr = np.clip(rng.normal(level, 12, size[::-1]), 0, 255).astype(np.uint8)
    if mode == "I;16":
        img = Image.fromarray(arr.astype(np.uint16) * 257)
    else:
        img = Image.fromarray(arr, mode="L").convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _images(folder: Path) -> None:
    """m00..m11.png: L, RGB, RGBA, 16-bit, palette; five sizes; label-1 images brighter."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    kinds = [("L", (40, 40)), ("RGB", (50, 30)), ("RGBA", (32, 32)), ("I;16", (40, 40)),
             ("P", (24, 36)), ("L", (64, 48))]
    for i in range(12):
        mode, size = kinds[i % len(kinds)]
        (folder / f"m{i:02d}.png").write_bytes(_png_bytes(mode, size, 70 + 110 * (i % 2), rng))
    whole = _png_bytes("L", (64, 64), 120, rng)
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (folder / "not_an_image.png").write_bytes(b"name,value\nthis is a CSV, not a PNG\n")


def _latin1_tables(data: Path) -> None:
    """A Latin-1 header (``région``), a Latin-1 value on CSV line 5, and a cp1252 table with NaN groups."""
    rows = [f"{i / 10:.1f},{'FM'[i % 2]},{i % 2}" for i in range(12)]
    header = ["f0,sex,y,r\xe9gion"] + [r + ",north" for r in rows]
    (data / "latin1_header.csv").write_bytes(("\n".join(header) + "\n").encode("latin-1"))
    body = ["f0,sex,y,site"] + [r + ",Montreal" for r in rows]
    body[4] = "0.3,M,1,Qu\xe9bec"
    (data / "latin1_body.csv").write_bytes(("\n".join(body) + "\n").encode("latin-1"))
    rng = np.random.default_rng(1)
    sites = ["Montr\xe9al", "Z\xfcrich", "St\u2019Albans"]  # \u2019 exists in cp1252 only
    lines = ["f0,f1,sex,site,y"]
    for i in range(48):
        y = i % 2
        sex = "" if i in (5, 17, 30) else "FM"[(i // 2) % 2]
        lines.append(f"{rng.normal() + y:.3f},{rng.normal():.3f},{sex},{sites[i % 3]},{y}")
    (data / "cp1252_group_nan.csv").write_bytes(("\n".join(lines) + "\n").encode("cp1252"))


def _npz_files(data: Path) -> None:
    rng = np.random.default_rng(2)
    with open(data / "arrays_mismatch.npz", "wb") as fh:  # y has 9 entries, X and sex 10
        np.savez(fh, X=rng.normal(size=(10, 4)), y=np.arange(9) % 2, sex=np.array(list("FM" * 5)))
    marker = str(data.parent / "PWNED-npz")
    with open(data / "pickled.npz", "wb") as fh:
        np.savez(fh, X=np.array([Payload(marker)] * 10, dtype=object), y=np.arange(10) % 2,
                 sex=np.array(list("FM" * 5)))
    images = (rng.random((10, 20, 20)) * 200).astype(np.uint8)
    with open(data / "pack.npz", "wb") as fh:
        np.savez(fh, images=images)
    with open(data / "pickled_pack.npz", "wb") as fh:
        np.savez(fh, images=np.array([Payload(marker)] * 10, dtype=object))


def _dicom(path: Path, pixels: np.ndarray | None) -> None:
    """A DICOM file (Explicit VR Little Endian, 12-bit MONOCHROME2 pixels; frames when ``pixels`` is
    3-D; no PixelData at all when ``pixels`` is None, like a structured report)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT" if pixels is not None else "SR"
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape[-2:]
        if pixels.ndim == 3:
            ds.NumberOfFrames = pixels.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def _dicom_files(folder: Path) -> None:
    """img_00..02.dcm (images), report.dcm (no pixel data), cine.dcm (3 frames): when pydicom is
    installed (the ``dicom_*`` cases are skipped without it)."""
    try:
        import pydicom  # noqa: F401
    except ImportError:
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(3):
        _dicom(folder / f"img_{i:02d}.dcm", rng.integers(0, 4096, (20, 20)))
    _dicom(folder / "report.dcm", None)
    _dicom(folder / "cine.dcm", rng.integers(0, 4096, (3, 20, 20)))


def _checkpoints(data: Path) -> None:
    """``pickled_model.pt``: a torch file whose pickle would create ``PWNED-pt`` if it were ever
    unpickled; ``tensor_list.pt``: a list of tensors (loads with weights_only, but is no state dict)."""
    import torch

    torch.save({"model": Payload(str(data.parent / "PWNED-pt"))}, data / "pickled_model.pt")
    torch.save([torch.zeros(3), torch.ones(2)], data / "tensor_list.pt")


def _odd_specs(root: Path) -> None:
    """Specs that are binary, UTF-16, or nested deeper than any spec: brackets 5000 deep, and
    mappings 60 and 400 deep (the latter beyond the parser's recursion)."""
    (root / "binary_spec.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\xfe\x80")
    text = "name: utf16\ndataset: synthetic_embeddings\nattributes: [sex]\n"
    (root / "utf16_spec.yaml").write_bytes(text.encode("utf-16"))
    (root / "utf16_no_bom_spec.yaml").write_bytes(text.encode("utf-16-be"))
    (root / "utf32_spec.yaml").write_bytes(text.encode("utf-32"))
    (root / "utf32_no_bom_spec.yaml").write_bytes(text.encode("utf-32-le"))
    # 500,000 list items in under 1 MiB: refused by count before parsing (parsing took 100 s)
    (root / "list_500k_spec.yaml").write_text("name: big\nattributes: [" + ",".join("0" * 500_000) + "]\n")
    head = "name: deep\ndataset: synthetic_embeddings\nattributes: [sex]\ntitle: "
    (root / "nested_5000.yaml").write_text(head + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    for depth in (60, 400):
        block = "".join(" " * (i + 1) + f"k{i}:\n" for i in range(depth)) + " " * (depth + 1) + "end\n"
        text = "name: deep\ndataset: synthetic_embeddings\nattributes: [sex]\ndescription:\n" + block
        (root / f"block_nested_{depth}.yaml").write_text(text, encoding="utf-8")


def _plugin_files(root: Path) -> None:
    """``plugins/syntax_error_plugin.py``: a local plugin file that is not valid Python (made here,
    so that the linter never reads it)."""
    (root / "plugins" / "syntax_error_plugin.py").write_text(
        "from fairaudit import hookimpl\n\n\ndef fairaudit_register_debiasers(registry:\n    pass\n",
        encoding="utf-8")


def build_corpus(dest: Path) -> Path:
    """Copy the committed corpus to ``dest`` and add the generated files; returns ``dest``."""
    shutil.copytree(CORPUS, dest)
    _images(dest / "data" / "images")
    _latin1_tables(dest / "data")
    _npz_files(dest / "data")
    _dicom_files(dest / "data" / "dicom")
    _checkpoints(dest / "data")
    _odd_specs(dest)
    _plugin_files(dest)
    return dest


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("bad_inputs") / "corpus")
