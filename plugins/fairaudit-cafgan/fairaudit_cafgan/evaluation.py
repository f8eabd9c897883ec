"""Train-on-synthetic evaluation (the seed's protocol, METHODS.md §2.5, with conditional labels).

For each arm: train a fresh downstream classifier on real training data (baseline) or on a
labelled synthetic set from a generator, and test it on the real test split: AUC, F1 and
EOD (max minus min TPR across groups, fairlearn's equal-opportunity difference) with
patient-level bootstrap confidence intervals; generator arms add the implausible-lung-mask
rate of their samples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fairaudit.base import BaseModel
    from fairaudit.data import AuditDataset
    from fairaudit_cafgan.generator import CAFGAN

ModelFactory = Callable[[], "BaseModel"]


def tpr_by_group(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """True-positive rate of every group that has positives (fairaudit's confusion-count rates)."""
    from fairaudit.stats import group_confusion_counts, rate

    names, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    tpr = rate(group_confusion_counts(y_true, y_pred, codes, len(names)), "true_positive_rate")
    return {str(g): float(v) for g, v in zip(names, tpr, strict=True) if np.isfinite(v)}


def equal_opportunity_difference(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> float:
    """``max_g TPR_g - min_g TPR_g`` over groups with positives (0 with fewer than two): the gap
    ``group_metrics`` reports, from the same rate and difference functions."""
    from fairaudit.stats import difference

    rates = np.array(list(tpr_by_group(np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)).values()))
    return float(difference(rates)) if len(rates) > 1 else 0.0


def point_metrics(
    y_true: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """AUC, F1 and EOD at ``threshold`` (NaN AUC when only one class is present)."""
    from sklearn.metrics import f1_score, roc_auc_score

    y_true = np.asarray(y_true).astype(int)
    pred = (np.asarray(scores) >= threshold).astype(int)
    auc = float(roc_auc_score(y_true, scores)) if len(np.unique(y_true)) == 2 else float("nan")
    return {
        "auc": auc,
        "f1": float(f1_score(y_true, pred, zero_division=0)),
        "eod": equal_opportunity_difference(y_true, pred, groups),
    }


def bootstrap_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    patient_ids: np.ndarray | None = None,
    *,
    threshold: float = 0.5,
    n_boot: int = 200,
    ci_level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Point values and percentile CIs of AUC, F1 and EOD, resampling patients."""
    y_true, scores, groups = np.asarray(y_true), np.asarray(scores), np.asarray(groups)
    ids = np.arange(len(y_true)) if patient_ids is None else np.asarray(patient_ids)
    uniq, inverse = np.unique(ids, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == k) for k in range(len(uniq))]
    rng = np.random.default_rng(seed)
    point = point_metrics(y_true, scores, groups, threshold)
    draws: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        rows = np.concatenate([rows_of[k] for k in pick])
        for key, value in point_metrics(y_true[rows], scores[rows], groups[rows], threshold).items():
            if np.isfinite(value):
                draws[key].append(value)
    alpha = (1 - ci_level) / 2
    out = {}
    for key, value in point.items():
        values = np.asarray(draws[key])
        lo, hi = np.quantile(values, [alpha, 1 - alpha]) if len(values) else (np.nan, np.nan)
        out[key] = {"value": value, "ci_low": float(lo), "ci_high": float(hi)}
    return out


def default_model_factory(seed: int = 0) -> ModelFactory:
    """The built-in small CNN (``cnn``), as the runner's default downstream image model."""
    from fairaudit.builtin.models.cnn import SmallCNN

    return lambda: SmallCNN(device="cpu", random_state=seed)


def synthetic_training_set(
    generator: CAFGAN, train: AuditDataset, n_synthetic: int | None = None, seed: int = 0,
    sampling: str = "as_data",
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled synthetic images: labels and groups of training rows chosen as the runner
    does (``sampling``: ``as_data`` or ``balanced`` over (label, ``generator.group_attribute``)
    cells, :func:`fairaudit.training.synthetic_rows`), one generated image per row."""
    from fairaudit.training import synthetic_rows

    n = n_synthetic or len(train)
    rows = synthetic_rows(train.y, train.sensitive, n, sampling, attributes=[generator.group_attribute], seed=seed)
    y = np.asarray(train.y)[rows]
    sf = train.sensitive.iloc[rows].reset_index(drop=True)
    return np.asarray(generator.generate(y, sf), np.float32), y


def compare_arms(
    train: AuditDataset,
    test: AuditDataset,
    arms: Mapping[str, CAFGAN | None],
    *,
    group_attribute: str = "sex",
    model_factory: ModelFactory | None = None,
    n_synthetic: int | None = None,
    n_boot: int = 200,
    threshold: float = 0.5,
    seed: int = 0,
    paired_reference: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate each arm by training a fresh downstream model and testing on real data.

    Parameters
    ----------
    arms:
        Name -> a :class:`~fairaudit_cafgan.CAFGAN` (fitted on ``train`` if not yet
        fitted) or ``None`` for the baseline trained on the real training images.
    paired_reference:
        An arm name: every other arm also gets ``"versus"``, its change from that arm in
        AUC, worst-group AUC and EOD with paired-bootstrap intervals (one patient resample
        scores both arms), e.g. CAF-GAN against plain WGAN-GP.

    Returns
    -------
    dict
        Name -> ``{"auc"|"f1"|"eod": {value, ci_low, ci_high}, "tpr": {group: rate},
        "implausible_rate": float | None, "scores": test scores[, "versus": {...}]}``.
    """
    from fairaudit_cafgan.generator import group_values

    if paired_reference is not None and paired_reference not in arms:
        raise ValueError(f"paired_reference {paired_reference!r} is not one of the arms {list(arms)}")
    factory = model_factory or default_model_factory(seed)
    groups_test = group_values(test.sensitive, group_attribute)
    results: dict[str, dict[str, Any]] = {}
    for name, generator in arms.items():
        if generator is None:
            X, y = np.asarray(train.images, np.float32), np.asarray(train.y)
            implausible = None
        else:
            if not hasattr(generator, "generator_"):
                generator.fit(train)
            X, y = synthetic_training_set(generator, train, n_synthetic, seed)
            implausible = generator.generated_plausibility_.get("implausible_rate")
        model = factory().fit(X, y)
        scores = np.asarray(model.predict_proba(np.asarray(test.images, np.float32)))
        metrics = bootstrap_metrics(
            test.y,
            scores,
            groups_test,
            test.patient_ids,
            threshold=threshold,
            n_boot=n_boot,
            seed=seed,
        )
        results[name] = {
            **metrics,
            "tpr": tpr_by_group(np.asarray(test.y), (scores >= threshold).astype(int), groups_test),
            "implausible_rate": implausible,
            "scores": scores,
        }
    if paired_reference is not None:
        _add_paired_changes(results, test, groups_test, group_attribute, paired_reference, n_boot, threshold, seed)
    return results


def _add_paired_changes(
    results: dict[str, dict[str, Any]],
    test: AuditDataset,
    groups_test: np.ndarray,
    group_attribute: str,
    reference: str,
    n_boot: int,
    threshold: float,
    seed: int,
) -> None:
    """``results[arm]["versus"]``: the change from ``reference`` with paired intervals."""
    import pandas as pd

    from fairaudit.stats.paired import paired_changes

    sensitive = pd.DataFrame({group_attribute: groups_test})
    changes = paired_changes(
        test.y,
        {name: r["scores"] for name, r in results.items()},
        sensitive,
        [group_attribute],
        reference=reference,
        patient_ids=test.patient_ids,
        threshold=threshold,
        n_boot=n_boot,
        seed=seed,
        min_group_positives=1,  # every group with a positive, as this module's own EOD
    )
    for name, found in changes.items():
        results[name]["versus"] = {"reference": reference, **{c.metric: c.interval() for c in found}}


def comparison_section(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A ``table`` report section: AUC, F1, EOD (with CIs) and implausible-mask rate per arm."""

    def fmt(m: Mapping[str, float]) -> str:
        return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"

    rows = []
    for name, r in results.items():
        rate = r.get("implausible_rate")
        rows.append(
            [
                name,
                fmt(r["auc"]),
                fmt(r["f1"]),
                fmt(r["eod"]),
                "n/a" if rate is None else f"{rate:.3f}",
            ]
        )
    return {
        "kind": "table",
        "title": "Train on synthetic, test on real",
        "columns": ["arm", "AUC [95% CI]", "F1 [95% CI]", "EOD [95% CI]", "implausible masks"],
        "rows": rows,
        "caption": "A fresh downstream classifier per arm, tested on the real test split; "
        "EOD = max - min TPR across groups at threshold 0.5.",
    }
