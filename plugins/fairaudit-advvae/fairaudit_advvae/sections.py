"""Report content from a fitted debiaser: training curves and the adversaries' final scores.

Each section is a JSON-serialisable dict:

* ``{"kind": "curve", "title", "x_label", "y_label", "series": [{"name", "x", "y"}], "note"}``
* ``{"kind": "table", "title", "columns": [...], "rows": [[...], ...], "note"}``
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fairaudit_advvae.debiaser import AdversarialVAEDebiaser


def _clean(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _series(history: list[dict[str, float]], key: str, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "x": [int(h["epoch"]) for h in history],
        "y": [_clean(h.get(key)) for h in history],
    }


def build_sections(est: AdversarialVAEDebiaser) -> list[dict[str, Any]]:
    history = est.history_
    split = "validation" if est.validation_split_ == "val" else "training (no validation split)"
    kept = (
        f"Epoch {est.best_epoch_} of {len(history)} was kept (early stopping on the {split} "
        "objective)."
    )
    losses = {
        "kind": "curve",
        "title": "advvae: training losses",
        "x_label": "epoch",
        "y_label": "loss (per input element; adversaries relative to chance)",
        "series": [
            _series(history, "train_recon", "reconstruction (train)"),
            _series(history, "val_recon", "reconstruction (val)"),
            _series(history, "train_kl", "KL (train)"),
            _series(history, "train_task", "task BCE (train)"),
            _series(history, "val_task", "task BCE (val)"),
            *[
                _series(
                    history, f"train_adv:{t.name}", f"adversary loss / chance: {t.name} (train)"
                )
                for t in est.targets_
            ],
        ],
        "note": kept,
    }
    adversary = {
        "kind": "curve",
        "title": "advvae: adversary during training",
        "x_label": "epoch",
        "y_label": "adversary score on the validation split",
        "series": [
            *[
                _series(history, f"val_adv_{t.score_name}:{t.name}", f"{t.name} ({t.score_name})")
                for t in est.targets_
            ],
            _series(history, "val_task_auc", "task head AUC"),
        ],
        "note": "Accuracy for categorical attributes (chance = majority-group share), R^2 for "
        "continuous ones (chance = 0).",
    }
    last = history[-1] if history else {}
    best = history[est.best_epoch_ - 1] if history else {}
    fresh = {row["attribute"]: row for row in est.adversary_audit_}
    rows = []
    for t in est.targets_:
        audit = fresh.get(t.name, {})
        rows.append(
            [
                t.name,
                t.kind,
                t.score_name,
                _clean(t.chance_score),
                _clean(best.get(f"val_adv_{t.score_name}:{t.name}")),
                _clean(audit.get("score")),
                _clean(audit.get("auc")),
            ]
        )
    table = {
        "kind": "table",
        "title": "advvae: adversaries at the end of training",
        "columns": [
            "attribute",
            "type",
            "metric",
            "chance",
            "training adversary (kept epoch)",
            "fresh adversary",
            "fresh adversary AUC",
        ],
        "rows": rows,
        "note": (
            f"Scores on the {split} split. The fresh adversary is a new MLP trained for "
            f"{est.audit_epochs} epochs on the frozen latent means; it measures what is left after "
            f"the min-max game. Last epoch: task AUC {_clean(last.get('val_task_auc'))}."
        ),
    }
    return [losses, adversary, table]
