"""image_folder on DICOM files the tests write with pydicom: photometric inversion, rescale,
windows, 16-bit range, frames, compression and the non-image / missing-pydicom errors, eager and
streamed.  Expected intensities are computed here from the stored pixels (DICOM PS3.3 C.11.2)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairaudit.builtin.datasets.image_folder import ImageFolderDataset
from fairaudit.errors import DataError

pytest.importorskip("pydicom")

RNG = np.random.default_rng(7)
#: 12-bit stored values (in 16-bit words) of a 6 x 5 image.
RAW12 = RNG.integers(0, 4096, (6, 5)).astype(np.uint16)


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM's linear VOI function (PS3.3 C.11.2.1.2.1) with output range [0, 1]."""
    low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    mid = (values - (center - 0.5)) / (width - 1) + 0.5
    return np.where(values <= low, 0.0, np.where(values > high, 1.0, mid))


def folder_of(tmp_path: Path, files: list[Path]) -> Path:
    """metadata.csv listing ``files`` (alternating labels and sexes)."""
    rows = [{"path": f.name, "y": i % 2, "sex": "FM"[i % 2], "pid": f"p{i}"} for i, f in enumerate(files)]
    meta = tmp_path / "metadata.csv"
    pd.DataFrame(rows).to_csv(meta, index=False)
    return meta


def load(meta: Path, **kw) -> np.ndarray:
    params = {"metadata": str(meta), "target": "y", "sensitive": ["sex"], "patient_id": "pid", "image_size": None}
    return ImageFolderDataset(**{**params, **kw}).load().images


def test_monochrome1_is_inverted_and_monochrome2_is_not(tmp_path: Path, dicom_writer: Callable[..., Path]) -> None:
    files = [dicom_writer(tmp_path / "m2.dcm", RAW12, bits_stored=12, photometric="MONOCHROME2"),
             dicom_writer(tmp_path / "m1.dcm", RAW12, bits_stored=12, photometric="MONOCHROME1", implicit=True)]
    images = load(folder_of(tmp_path, files), dicom_window="none")
    assert images.shape == (2, 1, 6, 5)
    np.testing.assert_allclose(images[0, 0], RAW12 / 4095.0, atol=1e-6)  # brighter = higher value
    np.testing.assert_allclose(images[1, 0], 1.0 - RAW12 / 4095.0, atol=1e-6)  # minimum shown white


def test_rescale_then_the_files_window_or_the_specs(tmp_path: Path, dicom_writer: Callable[..., Path]) -> None:
    """CT-like: signed stored values, slope 2 and intercept -1024 give HU; window 40/400 maps them."""
    stored = (RNG.integers(-600, 1200, (8, 8))).astype(np.int16)
    hu = stored * 2.0 - 1024.0
    f = dicom_writer(tmp_path / "ct.dcm", stored, bits_stored=12, signed=True, slope=2.0, intercept=-1024.0,
                     window=(40.0, 400.0))
    meta = folder_of(tmp_path, [f, f])
    from_file = load(meta)[0, 0]
    np.testing.assert_allclose(from_file, linear_window(hu, 40.0, 400.0), atol=1e-6)
    assert 0.0 < from_file.mean() < 1.0 and (from_file == 0).any() and (from_file == 1).any()
    lung = load(meta, dicom_window={"center": -600, "width": 1500})[0, 0]
    np.testing.assert_allclose(lung, linear_window(hu, -600.0, 1500.0), atol=1e-6)
    # no window: the 12-bit signed range [-2048, 2047] through the rescale is [-5120, 3070] HU
    full = load(meta, dicom_window="none")[0, 0]
    np.testing.assert_allclose(full, (hu + 5120.0) / (3070.0 + 5120.0), atol=1e-6)
    own = load(meta, dicom_window="minmax")[0, 0]
    np.testing.assert_allclose(own, (hu - hu.min()) / (hu.max() - hu.min()), atol=1e-6)


def test_first_of_several_windows_voi_functions_and_monochrome1(tmp_path: Path,
                                                                 dicom_writer: Callable[..., Path]) -> None:
    """Several windows in the file: the first is used; SIGMOID and LINEAR_EXACT follow PS3.3 C.11.2.1.3;
    MONOCHROME1 is inverted after the window."""
    values = RAW12.astype(np.float64)
    files = [dicom_writer(tmp_path / "two.dcm", RAW12, bits_stored=12, window=([1500.0, 3000.0], [1000.0, 200.0]),
                          photometric="MONOCHROME1"),
             dicom_writer(tmp_path / "sig.dcm", RAW12, bits_stored=12, window=(2000.0, 1200.0),
                          voi_function="SIGMOID"),
             dicom_writer(tmp_path / "exact.dcm", RAW12, bits_stored=12, window=(2000.0, 1200.0),
                          voi_function="LINEAR_EXACT")]
    images = load(folder_of(tmp_path, files))[:, 0]
    np.testing.assert_allclose(images[0], 1.0 - linear_window(values, 1500.0, 1000.0), atol=1e-6)
    np.testing.assert_allclose(images[1], 1.0 / (1.0 + np.exp(-4.0 * (values - 2000.0) / 1200.0)), atol=1e-6)
    np.testing.assert_allclose(images[2], np.clip((values - 2000.0) / 1200.0 + 0.5, 0.0, 1.0), atol=1e-6)


def test_16_bit_values_keep_their_precision(tmp_path: Path, dicom_writer: Callable[..., Path]) -> None:
    """All 16 stored bits map to [0, 1] without 8-bit rounding (neighbours 1/65535 apart stay apart)."""
    raw = np.array([[0, 1, 2, 3], [30000, 30001, 65534, 65535]], dtype=np.uint16)
    f = dicom_writer(tmp_path / "d16.dcm", raw)
    image = load(folder_of(tmp_path, [f, f]))[0, 0]  # no window in the file: the 16-bit range
    np.testing.assert_allclose(image, raw / 65535.0, atol=1e-7)
    assert len(np.unique(image)) == raw.size


def test_explicit_and_implicit_vr_read_alike_and_resize(tmp_path: Path, dicom_writer: Callable[..., Path]) -> None:
    files = [dicom_writer(tmp_path / "e.dcm", RAW12, bits_stored=12),
             dicom_writer(tmp_path / "i.dcm", RAW12, bits_stored=12, implicit=True)]
    images = load(folder_of(tmp_path, files), image_size=16, grayscale=False)
    assert images.shape == (2, 3, 16, 16) and images.dtype == np.float32
    np.testing.assert_array_equal(images[0], images[1])
    np.testing.assert_array_equal(images[0, 0], images[0, 2])  # grey repeated into RGB
    assert abs(float(images[0].mean()) - float(RAW12.mean() / 4095)) < 0.05


def test_rgb_dicom_becomes_grey_with_luma_weights(tmp_path: Path, dicom_writer: Callable[..., Path]) -> None:
    rgb = RNG.integers(0, 256, (4, 6, 3)).astype(np.uint8)
    f = dicom_writer(tmp_path / "rgb.dcm", rgb, photometric="RGB")
    meta = folder_of(tmp_path, [f, f])
    np.testing.assert_allclose(load(meta, grayscale=False)[0], rgb.transpose(2, 0, 1) / 255.0, atol=1e-6)
    np.testing.assert_allclose(load(meta)[0, 0], rgb @ np.array([0.299, 0.587, 0.114]) / 255.0, atol=1e-5)


def test_streamed_dicom_equals_eager(tmp_path: Path, dicom_writer: Callable[..., Path]) -> None:
    files = [dicom_writer(tmp_path / f"s{i}.dcm", np.roll(RAW12, i), bits_stored=12,
                          photometric=("MONOCHROME1", "MONOCHROME2")[i % 2], window=(2000.0, 3000.0))
             for i in range(4)]
    meta = folder_of(tmp_path, files)
    eager = load(meta, image_size=8)
    lazy = load(meta, image_size=8, stream=True)
    assert type(lazy).__name__ == "LazyImages" and lazy.shape == eager.shape
    np.testing.assert_array_equal(np.asarray(lazy), eager)


def test_multi_frame_refused_unless_a_frame_is_named(tmp_path: Path, dicom_writer: Callable[..., Path]) -> None:
    frames = np.stack([RAW12, 4095 - RAW12])
    f = dicom_writer(tmp_path / "cine.dcm", frames, bits_stored=12)
    meta = folder_of(tmp_path, [f, f])
    for stream in (False, True):
        with pytest.raises(DataError, match=r"metadata\.csv: CSV line 2: cannot read DICOM \S*cine\.dcm: a multi-frame "
                                            r"DICOM \(2 frames\); set params\.dicom_frame"):
            load(meta, stream=stream, image_size=8)
    np.testing.assert_allclose(load(meta, dicom_frame=1, dicom_window="none")[0, 0], 1 - RAW12 / 4095, atol=1e-6)
    with pytest.raises(DataError, match=r"dicom_frame 2 is out of range: the file has 2 frames"):
        load(meta, dicom_frame=2)


def test_compressed_files_are_decoded_or_refused_by_name(tmp_path: Path, dicom_writer: Callable[..., Path]) -> None:
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless, RLELossless

    plain = dicom_writer(tmp_path / "plain.dcm", RAW12, bits_stored=12)
    ds = pydicom.dcmread(plain)
    ds.compress(RLELossless)  # RLE: pydicom decodes it with numpy alone
    ds.save_as(tmp_path / "rle.dcm")
    both = load(folder_of(tmp_path, [plain, tmp_path / "rle.dcm"]))
    np.testing.assert_array_equal(both[0], both[1])
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    jls = dicom_writer(tmp_path / "jls.dcm", RAW12, bits_stored=12, transfer_syntax=JPEGLSLossless,
                       pixel_bytes=encapsulate([b"\xff\xd8 not really JPEG-LS \xff\xd9"]))
    meta = folder_of(tmp_path, [plain, jls])
    for stream in (False, True):
        with pytest.raises(DataError, match=r"CSV line 3: cannot read DICOM \S*jls\.dcm: compressed with JPEG-LS "
                                            r"Lossless Image Compression \(1\.2\.840\.10008\.1\.2\.4\.80\), which no "
                                            r"installed DICOM decoder reads; install pylibjpeg"):
            load(meta, stream=stream, image_size=8)


def test_dicom_without_pixel_data_is_an_error_naming_the_file(tmp_path: Path,
                                                              dicom_writer: Callable[..., Path]) -> None:
    files = [dicom_writer(tmp_path / "img.dcm", RAW12, bits_stored=12), dicom_writer(tmp_path / "report.dcm", None)]
    meta = folder_of(tmp_path, files)
    for stream in (False, True):
        with pytest.raises(DataError, match=r"CSV line 3: cannot read DICOM \S*report\.dcm: a DICOM file without "
                                            r"pixel data \(SOP class 'Secondary Capture Image Storage', modality "
                                            r"'SR'\): not an image"):
            load(meta, stream=stream, image_size=8)


def test_a_file_named_dcm_that_is_not_dicom(tmp_path: Path) -> None:
    (tmp_path / "fake.dcm").write_bytes(b"just text, no DICOM preamble")
    with pytest.raises(DataError, match=r"cannot read DICOM \S*fake\.dcm: not a DICOM file"):
        load(folder_of(tmp_path, [tmp_path / "fake.dcm"] * 2))


def test_missing_pydicom_names_the_extra(tmp_path: Path, dicom_writer: Callable[..., Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    f = dicom_writer(tmp_path / "a.dcm", RAW12, bits_stored=12)
    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom -> ImportError
    with pytest.raises(DataError, match=r"cannot read DICOM \S*a\.dcm: reading DICOM files needs pydicom, which is "
                                        r"not installed; install it with pip install 'fairaudit\[dicom\]'"):
        load(folder_of(tmp_path, [f, f]))


def test_dicom_mixed_with_png_is_warned(tmp_path: Path, dicom_writer: Callable[..., Path]) -> None:
    from PIL import Image

    Image.fromarray((RAW12 // 16).astype(np.uint8)).save(tmp_path / "b.png")
    meta = folder_of(tmp_path, [dicom_writer(tmp_path / "a.dcm", RAW12, bits_stored=12), tmp_path / "b.png"])
    with pytest.warns(UserWarning, match=r"the images mix bit depths: 1 8-bit \(L; e\.g\. b\.png\); 1 DICOM "
                                         r"\(DICOM; e\.g\. a\.dcm\)\. .* and DICOM ones windowed"):
        load(meta, image_size=8)


def test_static_checks_of_the_dicom_parameters(tmp_path: Path) -> None:
    meta = tmp_path / "metadata.csv"
    pd.DataFrame({"path": ["a.dcm"], "y": [1], "sex": ["F"]}).to_csv(meta, index=False)
    loader = ImageFolderDataset(metadata=str(meta), target="y", sensitive=["sex"],
                                dicom_window={"center": 40, "width": 0}, dicom_frame=-1)
    problems = loader.check(tmp_path)
    assert any("dicom_window: its 'width' must be >= 1" in p for p in problems), problems
    assert any("dicom_frame must be >= 0" in p for p in problems), problems
