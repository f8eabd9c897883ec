"""Operating points fixed on validation data (never on the test split)."""

from __future__ import annotations

import math

import numpy as np

from fairaudit.errors import DataError
from fairaudit.stats.confusion import _binary, check_scores


def threshold_at_specificity(y_true: np.ndarray, y_score: np.ndarray, specificity: float) -> float:
    """Lowest threshold ``t`` (positive when ``score >= t``) whose specificity reaches the target.

    The lowest such threshold maximises sensitivity subject to
    ``#{negatives with score < t} / #negatives >= specificity`` on the data given (validation).
    """
    if not 0 < specificity < 1:
        raise ValueError(f"specificity must be in (0, 1), got {specificity}")
    y = _binary(y_true, "y_true")
    s = check_scores(y_score, len(y))
    neg = np.sort(s[y == 0])
    if len(neg) == 0:
        raise DataError("no negatives in the validation data: cannot fix a specificity")
    k = math.ceil(specificity * len(neg) - 1e-9)
    return float(np.nextafter(neg[k - 1], np.inf))
