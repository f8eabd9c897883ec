"""How well an adversary predicts an attribute: accuracy and AUC, or R^2 (continuous)."""

from __future__ import annotations

import numpy as np

from fairaudit_advvae.attributes import AttributeTarget


def attribute_scores(
    spec: AttributeTarget, pred: np.ndarray, target: np.ndarray, mask: np.ndarray
) -> dict[str, float | None]:
    """``{"score": accuracy or R^2, "auc": ROC AUC or None}`` on rows where ``mask`` is set.

    ``pred`` is what :func:`fairaudit_advvae.losses.predictions` returns; ``target`` the encoded
    attribute (class index or standardised value).
    """
    from sklearn.metrics import roc_auc_score

    keep = np.asarray(mask, dtype=bool)
    if keep.sum() < 2:
        return {"score": None, "auc": None}
    pred, target = np.asarray(pred)[keep], np.asarray(target)[keep]
    if spec.kind == "continuous":
        sst = float(((target - target.mean()) ** 2).sum())
        r2 = 1.0 - float(((target - pred) ** 2).sum()) / sst if sst > 0 else None
        return {"score": r2, "auc": None}
    labels = target.astype(int)
    if spec.kind == "binary":
        accuracy = float(((pred > 0.5).astype(int) == labels).mean())
        auc = float(roc_auc_score(labels, pred)) if len(np.unique(labels)) == 2 else None
        return {"score": accuracy, "auc": auc}
    accuracy = float((pred.argmax(axis=1) == labels).mean())
    auc: float | None = None
    if len(np.unique(labels)) == pred.shape[1]:
        probs = pred / pred.sum(axis=1, keepdims=True)
        auc = float(
            roc_auc_score(labels, probs, multi_class="ovr", labels=list(range(pred.shape[1])))
        )
    return {"score": accuracy, "auc": auc}
