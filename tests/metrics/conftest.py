"""Fixtures of the metric and statistics tests; makes ``_metrics_data`` importable."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _metrics_data import binary_case


@pytest.fixture
def case3() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three groups with different TPR/FPR (900 rows)."""
    return binary_case()
