"""Fixtures of the dataset tests: a cross-validated logistic probe (the yardstick)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def _probe_auc(X: np.ndarray, target: np.ndarray, C: float = 0.05, folds: int = 3) -> float:
    """Out-of-fold ROC AUC of a standardised logistic regression predicting ``target``."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    target = np.asarray(target).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    scores = cross_val_predict(model, X, target, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(target, scores))


@pytest.fixture
def probe_auc() -> Callable[..., float]:
    return _probe_auc


def write_dicom(path: Path, pixels: np.ndarray | None, *, photometric: str = "MONOCHROME2",
                bits_stored: int | None = None, signed: bool = False, slope: float | None = None,
                intercept: float | None = None, window: tuple[float, float] | None = None,
                implicit: bool = False, transfer_syntax: str | None = None,
                pixel_bytes: bytes | None = None, voi_function: str | None = None) -> Path:
    """A DICOM Part 10 file (proper file meta) of ``pixels`` (``(H, W)``, ``(frames, H, W)`` or
    ``(H, W, 3)``), Implicit or Explicit VR Little Endian; ``pixels=None`` writes no PixelData."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        SecondaryCaptureImageStorage,
        generate_uid,
    )

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax or (ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian)
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = "P1"
    ds.Modality = "OT" if pixels is not None else "SR"
    if pixels is not None:
        arr = np.asarray(pixels)
        colour = photometric in ("RGB", "YBR_FULL")
        frames = arr.shape[0] if arr.ndim == 3 and not colour else 1
        ds.Rows, ds.Columns = arr.shape[-3:-1] if colour else arr.shape[-2:]
        ds.SamplesPerPixel = 3 if colour else 1
        if colour:
            ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = arr.dtype.itemsize * 8
        ds.BitsStored = bits_stored or ds.BitsAllocated
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = int(signed)
        if frames > 1:
            ds.NumberOfFrames = frames
        if slope is not None:
            ds.RescaleSlope = slope
            ds.RescaleIntercept = intercept or 0.0
        if window is not None:
            ds.WindowCenter, ds.WindowWidth = window
        if voi_function is not None:
            ds.VOILUTFunction = voi_function
        ds.PixelData = pixel_bytes if pixel_bytes is not None else arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def dicom_writer() -> Callable[..., Path]:
    pytest.importorskip("pydicom")
    return write_dicom
