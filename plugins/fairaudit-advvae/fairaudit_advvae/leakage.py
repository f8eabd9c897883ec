"""A fresh closed-form probe of how much of each attribute the latent code still carries.

Each epoch, ridge regressions on ``[mu, mu**2]`` (standardised with training statistics) are fit
on the training rows and scored on the validation rows: a new, deterministic probe that sees
linear and variance-coded signals and cannot be "fooled" by the encoder's last move the way the
adversaries trained inside the min-max game can.  Its leakage (``2 * (AUC - 0.5)``, or ``R^2``,
clipped at 0) enters the early-stopping objective.

This module imports torch at top level; the debiaser imports it lazily.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fairaudit_advvae.attributes import AttributeTarget


def _features(
    mu: torch.Tensor, mean: torch.Tensor | None = None, std: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    f = torch.cat([mu, mu * mu], dim=1).double()
    if mean is None or std is None:
        mean, std = f.mean(0, keepdim=True), f.std(0, keepdim=True).clamp_min(1e-8)
    return (f - mean) / std, mean, std


def _auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if positive.all() or not positive.any():
        return None
    return float(roc_auc_score(positive, score))


def probe_leakage(
    mu_train: torch.Tensor,
    T_train: torch.Tensor,
    M_train: torch.Tensor,
    mu_val: torch.Tensor,
    T_val: np.ndarray,
    M_val: np.ndarray,
    specs: Sequence[AttributeTarget],
    ridge: float = 1.0,
) -> dict[str, tuple[float, float | None]]:
    """``{attribute: (leak in [0, 1], probe score)}``; score = AUC (macro one-vs-rest) or R^2."""
    with torch.no_grad():
        F_train, mean, std = _features(mu_train)
        F_val, _, _ = _features(mu_val, mean, std)
        ones = torch.ones(len(F_train), 1, dtype=F_train.dtype, device=F_train.device)
        A_full = torch.cat([F_train, ones], dim=1)
        out: dict[str, tuple[float, float | None]] = {}
        for i, spec in enumerate(specs):
            keep = M_train[:, i] > 0
            A, t = A_full[keep], T_train[keep, i].double()
            if spec.kind == "continuous":
                Y = t[:, None]
            else:
                Y = torch.nn.functional.one_hot(t.long(), len(spec.classes)).double()
            reg = ridge * torch.eye(A.shape[1], dtype=A.dtype, device=A.device)
            reg[-1, -1] = 0.0
            coef = torch.linalg.solve(A.T @ A + reg, A.T @ Y)
            pred = (
                (
                    torch.cat(
                        [F_val, torch.ones(len(F_val), 1, dtype=F_val.dtype, device=F_val.device)],
                        dim=1,
                    )
                    @ coef
                )
                .cpu()
                .numpy()
            )
            rows = np.asarray(M_val[:, i]) > 0
            target = np.asarray(T_val[:, i])[rows]
            pred = pred[rows]
            if len(target) < 2:
                out[spec.name] = (0.0, None)
                continue
            if spec.kind == "continuous":
                sst = float(((target - target.mean()) ** 2).sum())
                r2 = 1.0 - float(((target - pred[:, 0]) ** 2).sum()) / sst if sst > 0 else 0.0
                out[spec.name] = (max(0.0, r2), r2)
                continue
            classes = [1] if spec.kind == "binary" else range(len(spec.classes))
            aucs = [
                a for c in classes if (a := _auc(pred[:, c], target.astype(int) == c)) is not None
            ]
            auc = float(np.mean(aucs)) if aucs else None
            out[spec.name] = (max(0.0, 2.0 * (auc - 0.5)) if auc is not None else 0.0, auc)
        return out
