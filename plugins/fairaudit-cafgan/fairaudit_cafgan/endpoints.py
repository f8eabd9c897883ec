"""Downstream endpoints of a train-on-synthetic classifier, judged on real data.

* ``eod_fixed``: equal-opportunity difference (max - min TPR across groups) at the fixed
  threshold 0.5, the pre-registered endpoint;
* ``eod_calibrated``: the same at a threshold chosen on the *real validation* split (Youden's J:
  the threshold maximising TPR - FPR there), so a classifier whose scores are merely shifted
  (e.g. one that calls almost every image positive at 0.5) is judged at an operating point;
* ``auc_gap``: max - min per-group AUC, threshold-free.

A classifier whose TPRs saturate at 0.5 (both groups near 1) has ``eod_fixed`` near 0 even
when its groups are ranked very differently; ``auc_gap`` and ``eod_calibrated`` expose that.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fairaudit_cafgan.evaluation import equal_opportunity_difference

#: The pre-registered threshold of the CAF-GAN acceptance criterion.
FIXED_THRESHOLD = 0.5


def youden_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold maximising TPR - FPR (ties: the highest such threshold; capped at 1.0).

    Raises ``ValueError`` when ``y_true`` does not hold both classes."""
    from sklearn.metrics import roc_curve

    y_true = np.asarray(y_true).astype(int)
    if len(np.unique(y_true)) != 2:
        raise ValueError("youden_threshold needs both classes in the validation labels")
    fpr, tpr, thresholds = roc_curve(y_true, np.asarray(scores, dtype=float))
    j = tpr - fpr
    best = int(np.flatnonzero(j == j.max())[0])  # roc_curve orders thresholds high -> low
    return float(min(thresholds[best], 1.0))


def auc_by_group(y_true: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """AUC of every group that holds both classes."""
    from sklearn.metrics import roc_auc_score

    y_true, scores, groups = np.asarray(y_true).astype(int), np.asarray(scores), np.asarray(groups).astype(str)
    out = {}
    for g in np.unique(groups):
        rows = groups == g
        if len(np.unique(y_true[rows])) == 2:
            out[str(g)] = float(roc_auc_score(y_true[rows], scores[rows]))
    return out


def auc_gap(y_true: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> float:
    """Max - min per-group AUC (NaN with fewer than two groups holding both classes)."""
    aucs = list(auc_by_group(y_true, scores, groups).values())
    return float(max(aucs) - min(aucs)) if len(aucs) > 1 else float("nan")


def endpoints(
    y_test: np.ndarray,
    scores_test: np.ndarray,
    groups_test: np.ndarray,
    y_val: np.ndarray,
    scores_val: np.ndarray,
) -> dict[str, Any]:
    """All endpoints of one downstream classifier.

    ``scores_val`` are its scores on the real validation split (labels ``y_val``), used only
    to choose the calibrated threshold; every reported figure is measured on the test split.

    Returns
    -------
    dict
        ``auc``, ``eod_fixed``, ``eod_calibrated``, ``auc_gap``, ``threshold`` (calibrated),
        ``tpr_fixed`` / ``tpr_calibrated`` / ``auc_by_group`` (per group).
    """
    from sklearn.metrics import roc_auc_score

    from fairaudit_cafgan.evaluation import tpr_by_group

    y_test = np.asarray(y_test).astype(int)
    scores_test = np.asarray(scores_test, dtype=float)
    if len(y_test) != len(scores_test) or len(y_test) != len(groups_test):
        raise ValueError(f"endpoints: {len(y_test)} labels, {len(scores_test)} scores, {len(groups_test)} groups")
    threshold = youden_threshold(y_val, scores_val)
    fixed = (scores_test >= FIXED_THRESHOLD).astype(int)
    calibrated = (scores_test >= threshold).astype(int)
    return {
        "auc": float(roc_auc_score(y_test, scores_test)),
        "eod_fixed": equal_opportunity_difference(y_test, fixed, groups_test),
        "eod_calibrated": equal_opportunity_difference(y_test, calibrated, groups_test),
        "auc_gap": auc_gap(y_test, scores_test, groups_test),
        "threshold": threshold,
        "tpr_fixed": tpr_by_group(y_test, fixed, groups_test),
        "tpr_calibrated": tpr_by_group(y_test, calibrated, groups_test),
        "auc_by_group": auc_by_group(y_test, scores_test, groups_test),
    }
