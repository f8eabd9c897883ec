"""A realistic demo :class:`AuditResult` for report tests and sample reports.

``demo_result(run_dir)`` simulates test-split scores of a baseline and a debiased model for two
attributes (one with a group too small to judge), computes the group metrics, curves and
bootstrap intervals from those scores, adds illustrative probe and bias-attack numbers, a
failed generator arm, plugin sections (curve, table, text, an image grid whose PNG it writes to
``run_dir/figures/``) and judges declared thresholds with the core's verdict logic.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import numpy as np

from fairaudit.blocks import to_blocks
from fairaudit.results import ArmResult, AuditResult, GroupValue, MetricResult

N_TEST = 640
N_BOOT = 300
ATTRIBUTES = ("sex", "age_group")
SPEC_TEXT = """\
schema_version: 1
name: demo-audit
title: "Demo audit: pneumonia classifier on chest X-ray embeddings"
seed: 0
dataset:
  name: synthetic_embeddings
  params: {n_samples: 3200, dim: 1408, seed: 0}
attributes: [sex, age_group]
model:
  name: logistic
  params: {C: 0.05}
debiasers:
  - name: advvae
    params: {latent_dim: 32, epochs: 40, adversary_weight: 1.0}
generators:
  - name: cafgan
    params: {epochs: 200, lambda_fair: 0.5}
metrics:
  - group_metrics
  - attribute_probe
  - name: bias_attack
    params: {fractions: [0.0, 0.1, 0.2, 0.3]}
statistics: {n_boot: 200, min_group_size: 30}
thresholds:
  equal_opportunity_difference: {max: 0.1}
  roc_auc: {min: 0.75}
"""

#: Score separation (signal strength) per group, by arm: the baseline is worse for women
#: and for the oldest group; the debiased arm narrows the sex gap at a small cost.
SEPARATION = {
    "baseline": {"F": 1.05, "M": 1.9, "<50": 1.6, "50-65": 1.5, ">65": 1.0},
    "advvae": {"F": 1.45, "M": 1.6, "<50": 1.55, "50-65": 1.5, ">65": 1.2},
}

#: Score offset per group: the baseline under-calls disease in women (a TPR gap).
OFFSET = {"baseline": {"F": -0.65}, "advvae": {"F": -0.15}}


def _population(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    sex = rng.permutation(np.repeat(np.array(["F", "M"]), [296, N_TEST - 296]))
    age = rng.permutation(np.repeat(np.array(["<50", "50-65", ">65"]), [330, N_TEST - 354, 24]))
    y = rng.binomial(1, np.where(age == ">65", 0.45, 0.32))
    return y, {"sex": sex, "age_group": age}


def _scores(
    arm: str, y: np.ndarray, groups: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    sep = np.array(
        [
            0.5 * (SEPARATION[arm][s] + SEPARATION[arm][a])
            for s, a in zip(groups["sex"], groups["age_group"], strict=True)
        ]
    )
    shift = np.array([OFFSET[arm].get(g, 0.0) for g in groups["sex"]])
    logit = 0.5 * sep * (2 * y - 1) + shift + rng.normal(0, 1.0, len(y)) - 0.2
    return 1 / (1 + np.exp(-logit))


def _ordered(groups: np.ndarray) -> list[str]:
    order = ["F", "M", "<50", "50-65", ">65"]
    return sorted(set(groups.tolist()), key=order.index)


def _weighted_rates(
    y: np.ndarray,
    s: np.ndarray,
    w: np.ndarray,
    threshold: float = 0.5,
) -> dict[str, np.ndarray]:
    """ROC AUC, TPR, FPR and selection rate for each row of bootstrap weights ``w`` ``(b, n)``."""
    pos, neg = y == 1, y == 0
    pred = (s >= threshold).astype(float)
    wp, wn = w[:, pos], w[:, neg]
    # pairwise order of positives vs negatives (ties count one half): AUC = wp C wn / (|wp| |wn|)
    order = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.einsum("bi,ij,bj->b", wp, order, wn) / (wp.sum(1) * wn.sum(1))
        return {
            "roc_auc": auc,
            "tpr": wp @ pred[pos] / wp.sum(1),
            "fpr": wn @ pred[neg] / wn.sum(1),
            "selection_rate": w @ pred / w.sum(1),
        }


def _interval(samples: np.ndarray) -> tuple[float | None, float | None]:
    arr = samples[np.isfinite(samples)]
    if len(arr) < 10:
        return None, None
    return float(np.quantile(arr, 0.025)), float(np.quantile(arr, 0.975))


def _group_metrics(
    y: np.ndarray,
    s: np.ndarray,
    groups: np.ndarray,
    attribute: str,
    rng: np.random.Generator,
    min_size: int,
) -> list[MetricResult]:
    """Group metrics with stratified bootstrap CIs (resampling as multinomial weights)."""
    names = _ordered(groups)
    weights = np.zeros((N_BOOT, len(y)))
    for g in names:
        idx = np.flatnonzero(groups == g)
        weights[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=N_BOOT)
    ones = np.ones((1, len(y)))
    point = {
        g: _weighted_rates(y[groups == g], s[groups == g], ones[:, groups == g]) for g in names
    }
    boot = {
        g: _weighted_rates(y[groups == g], s[groups == g], weights[:, groups == g]) for g in names
    }
    overall, overall_boot = _weighted_rates(y, s, ones), _weighted_rates(y, s, weights)
    judged = [g for g in names if (groups == g).sum() >= min_size]
    out = [_value(metric, attribute, y, groups, names, point, boot, overall, overall_boot, min_size)
           for metric in ("roc_auc", "tpr", "fpr", "selection_rate")]
    out.append(_worst_auc(attribute, judged, point, boot))
    too_small = len(judged) < len(names)
    for metric, key in (("equal_opportunity_difference", "tpr"), ("roc_auc_difference", "roc_auc")):
        out.append(_gap(metric, key, attribute, judged, point, boot, too_small, min_size))
    return out


def _value(metric: str, attribute: str, y: np.ndarray, groups: np.ndarray, names: list[str], point: dict,
           boot: dict, overall: dict, overall_boot: dict, min_size: int) -> MetricResult:
    """A per-group value (role ``value``) with its groups."""
    per_group = []
    for g in names:
        n = int((groups == g).sum())
        low, high = _interval(boot[g][metric])
        per_group.append(GroupValue(attribute=attribute, group=g, n=n, n_pos=int(y[groups == g].sum()),
                                    value=float(point[g][metric][0]), ci_low=low, ci_high=high,
                                    too_small=n < min_size))
    low, high = _interval(overall_boot[metric])
    return MetricResult(metric=metric, plugin="group_metrics", attribute=attribute, headline=metric == "roc_auc",
                        value=float(overall[metric][0]), ci_low=low, ci_high=high,
                        higher_is_better=metric in ("roc_auc", "tpr"), per_group=per_group)


def _worst_auc(attribute: str, judged: list[str], point: dict, boot: dict) -> MetricResult:
    worst = min(judged, key=lambda g: point[g]["roc_auc"][0])
    low, high = _interval(np.min(np.stack([boot[g]["roc_auc"] for g in judged]), axis=0))
    return MetricResult(metric="worst_group_auc", plugin="group_metrics", attribute=attribute, role="worst_group",
                        headline=True, derived_from="roc_auc", variant=True, value=float(point[worst]["roc_auc"][0]),
                        ci_low=low, ci_high=high, higher_is_better=True, details={"group": worst})


def _gap(metric: str, key: str, attribute: str, judged: list[str], point: dict, boot: dict, too_small: bool,
         min_size: int) -> MetricResult:
    """A max - min gap (role ``gap``) over the judged groups, with an illustrative p-value."""
    samples = np.ptp(np.stack([boot[g][key] for g in judged]), axis=0)
    low, high = _interval(samples)
    return MetricResult(
        metric=metric, plugin="group_metrics", attribute=attribute, role="gap",
        headline=metric == "equal_opportunity_difference",
        derived_from="true_positive_rate" if key == "tpr" else "roc_auc",
        value=float(np.ptp([point[g][key][0] for g in judged])), ci_low=low, ci_high=high,
        p_value=float(np.clip(np.mean(samples <= 0.01), 0.0005, 1.0)), higher_is_better=False,
        status="too_small" if too_small and metric == "equal_opportunity_difference" else "ok",
        notes=[f"groups below {min_size} samples excluded from the gap"] if too_small else [])


def _curves(
    y: np.ndarray,
    s: np.ndarray,
    groups: np.ndarray,
    attribute: str,
    min_size: int,
) -> list[MetricResult]:
    from sklearn.metrics import roc_auc_score, roc_curve

    roc: dict[str, Any] = {}
    cal: dict[str, Any] = {}
    per_group = []
    edges = np.linspace(0, 1, 11)
    for g in _ordered(groups):
        yg, sg = y[groups == g], s[groups == g]
        fpr, tpr, _ = roc_curve(yg, sg)
        roc[g] = {
            "fpr": fpr.round(4).tolist(),
            "tpr": tpr.round(4).tolist(),
            "auc": float(roc_auc_score(yg, sg)),
        }
        bins = np.clip(np.digitize(sg, edges[1:-1]), 0, 9)
        keep = [b for b in range(10) if (bins == b).sum() > 0]
        cal[g] = {
            "mean_predicted": [float(sg[bins == b].mean()) for b in keep],
            "fraction_positive": [float(yg[bins == b].mean()) for b in keep],
            "count": [int((bins == b).sum()) for b in keep],
        }
        per_group.append(
            GroupValue(attribute=attribute, group=g, n=len(yg), too_small=len(yg) < min_size)
        )
    return [
        MetricResult(
            metric="roc_curve",
            plugin="group_metrics",
            role="curve",
            attribute=attribute,
            per_group=per_group,
            details={"curves": roc},
        ),
        MetricResult(
            metric="calibration_curve",
            plugin="group_metrics",
            role="curve",
            attribute=attribute,
            per_group=per_group,
            details={"curves": cal},
        ),
    ]


def _probes(arm: str) -> list[MetricResult]:
    """Illustrative probe results: the debiaser removes most of the sex signal."""
    values = {
        "baseline": {"sex": (0.94, 0.92, 0.96), "age_group": (0.71, 0.66, 0.75)},
        "advvae": {"sex": (0.58, 0.53, 0.62), "age_group": (0.63, 0.58, 0.68)},
    }[arm]
    out = []
    for attribute, (v, lo, hi) in values.items():
        out.append(
            MetricResult(
                metric="attribute_probe_auc",
                plugin="attribute_probe",
                role="probe",
                headline=True,
                attribute=attribute,
                value=v,
                ci_low=lo,
                ci_high=hi,
                p_value=0.001 if lo > 0.55 else 0.2,
                details={"shuffled_auc": 0.51, "probe": "logistic", "cv_folds": 5},
            )
        )
    return out


def _bias_attack(arm: str) -> MetricResult:
    """Illustrative bias-attack curve: EOD as labels of women are flipped."""
    fractions = [0.0, 0.1, 0.2, 0.3]
    eod = {"baseline": [0.13, 0.19, 0.27, 0.36], "advvae": [0.05, 0.08, 0.12, 0.17]}[arm]
    return MetricResult(
        metric="bias_attack_eod",
        plugin="bias_attack",
        role="attack",
        attribute="sex",
        value=eod[-1] - eod[0],
        details={
            "fractions": fractions,
            "eod": eod,
            "eod_ci_low": [max(0.0, e - 0.04) for e in eod],
            "eod_ci_high": [e + 0.05 for e in eod],
            "flipped_group": "F",
        },
    )


def _demo_png(run_dir: Path) -> str:
    """Write a small reconstruction grid (phantom discs) and return its path relative to run_dir."""
    from fairaudit.imaging import save_grid

    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    rows = []
    for shift in (0.0, 0.15):
        original = np.clip(1 - ((xx - 0.5 - shift) ** 2 + (yy - 0.5) ** 2) * 6, 0, 1)
        recon = np.clip(original * 0.9 + 0.05, 0, 1)
        rows.append([original, recon, np.clip(0.5 + recon - original, 0, 1)])
    save_grid(
        run_dir / "figures" / "advvae_reconstructions.png",
        rows,
        row_labels=["sample 1", "sample 2"],
        col_labels=["input", "recon", "diff"],
        cell=48,
    )
    return "figures/advvae_reconstructions.png"


def _advvae_sections(run_dir: Path) -> list[dict[str, Any]]:
    epochs = list(range(1, 11))
    return [
        {
            "kind": "curve",
            "title": "advvae: training losses",
            "x_label": "epoch",
            "y_label": "loss",
            "series": [
                {
                    "name": "reconstruction (train)",
                    "x": epochs,
                    "y": [1.0 / e**0.5 for e in epochs],
                },
                {
                    "name": "adversary / chance: sex",
                    "x": epochs,
                    "y": [0.6 + 0.04 * e if e < 8 else None for e in epochs],
                },
            ],
            "note": "Epoch 9 of 10 was kept (early stopping on the validation objective).",
        },
        {
            "kind": "table",
            "title": "advvae: adversaries at the end of training",
            "columns": ["attribute", "metric", "chance", "fresh adversary"],
            "rows": [["sex", "accuracy", 0.54, 0.561], ["age_group", "accuracy", 0.52, 0.548]],
            "caption": "Fresh adversary: a new MLP trained on the frozen latent means.",
        },
        {
            "kind": "image_grid",
            "title": "advvae reconstructions",
            "image": _demo_png(run_dir),
            "caption": "Input, reconstruction and difference (grey = no change).",
        },
        {
            "kind": "text",
            "title": "Latent space",
            "text": "32 latent dimensions.\n\nKL weight 0.1.",
        },
        {"kind": "hologram", "title": "A section kind this report does not know"},
    ]


def _judge(arms: list[ArmResult], thresholds: dict[str, dict[str, Any]]) -> list[Any]:
    from fairaudit.audit.verdicts import judge_all
    from fairaudit.spec.models import Threshold

    return judge_all(arms, {k: Threshold(**v) for k, v in thresholds.items()})


def _failed_arm() -> ArmResult:
    try:
        raise RuntimeError("CUDA out of memory: tried to allocate 2.00 GiB (demo failure)")
    except RuntimeError as exc:
        tb = traceback.format_exc()
        error = f"{type(exc).__name__}: {exc}"
    return ArmResult(
        name="cafgan",
        kind="generator",
        plugin="cafgan",
        params={"epochs": 200, "lambda_fair": 0.5, "evaluation": "train_on_synthetic"},
        status="failed",
        error=error,
        traceback=tb,
    )


def demo_result(run_dir: Path) -> AuditResult:
    """A complete, realistic result (baseline, a debiaser, a failed generator); writes one PNG."""
    run_dir = Path(run_dir)
    rng = np.random.default_rng(7)
    min_size = 30
    y, groups = _population(rng)
    arms = []
    for name in ("baseline", "advvae"):
        scores = _scores(name, y, groups, rng)
        metrics: list[MetricResult] = []
        for attribute in ATTRIBUTES:
            metrics += _group_metrics(y, scores, groups[attribute], attribute, rng, min_size)
            metrics += _curves(y, scores, groups[attribute], attribute, min_size)
        metrics += _probes(name)
        metrics.append(_bias_attack(name))
        arm = ArmResult(
            name=name,
            kind="baseline" if name == "baseline" else "debiaser",
            plugin="logistic" if name == "baseline" else "advvae",
            params={"C": 0.05}
            if name == "baseline"
            else {"latent_dim": 32, "epochs": 40, "adversary_weight": 1.0},
            metrics=metrics,
            timings={f"{name}.fit": 12.4 if name == "advvae" else 1.3},
        )
        if name == "advvae":
            arm.blocks = to_blocks(_advvae_sections(run_dir), "advvae")[0]
            arm.artefacts = {
                "checkpoint": "checkpoints/advvae.safetensors",
                "reconstructions": "figures/advvae_reconstructions.png",
            }
        arms.append(arm)
    arms.append(_failed_arm())
    from fairaudit.audit.verdicts import adjust_p_values

    adjust_p_values(arms)
    thresholds = {"equal_opportunity_difference": {"max": 0.1}, "roc_auc": {"min": 0.75}}
    summaries = {}
    for split, n in (("train", 2240), ("val", 320), ("test", N_TEST)):
        share = n / N_TEST
        summaries[split] = {
            "n": n,
            "n_patients": int(n * 0.8),
            "prevalence": float(y.mean()),
            "modality": "features",
            "shape": [1408],
            "groups": {
                a: [
                    {
                        "group": g,
                        "n": round((groups[a] == g).sum() * share),
                        "prevalence": float(y[groups[a] == g].mean()),
                    }
                    for g in _ordered(groups[a])
                ]
                for a in ATTRIBUTES
            },
        }
    return AuditResult(
        name="demo-audit",
        title="Demo audit: pneumonia classifier on chest X-ray embeddings",
        created="2026-01-15T10:30:00",
        dataset={
            "name": "synthetic_embeddings",
            "description": "Synthetic CT-foundation-like embeddings with an injected sex signal.",
            "params": {"n_samples": 3200, "dim": 1408, "seed": 0},
            "summary": summaries,
            "hash": "sha256:3f1c9a0d5e7b",
        },
        settings={
            "seed": 0,
            "n_boot": N_BOOT,
            "ci_level": 0.95,
            "min_group_size": min_size,
            "attributes": list(ATTRIBUTES),
            "intersections": [],
            "threshold": 0.5,
            "device": "cpu",
            "model": {"name": "logistic", "params": {"C": 0.05}},
            "split": {"test_size": 0.2, "val_size": 0.1, "stratify": ["sex"], "seed": None},
            "thresholds": thresholds,
            "multiple_testing": "bh",
        },
        arms=arms,
        verdicts=_judge(arms, thresholds),
        warnings=[
            "attribute 'age_group': group '>65' is below min_group_size=30 in the test split; "
            "too small to judge"
        ],
        provenance={
            "fairaudit_version": "0.1.0",
            "python": "3.11.9",
            "platform": "Linux-x86_64",
            "packages": {"torch": "2.13.0", "numpy": "2.1.0"},
            "device": "cpu",
            "plugins": {"fairaudit.builtin.metrics": "0.1.0", "advvae": "0.1.0", "cafgan": "0.1.0"},
            "git": "0123abc",
            "timings": {"load_data": 0.8, "baseline": 1.3, "total": 45.2},
            "data_hash": "sha256:3f1c9a0d5e7b",
            "descriptions": {
                "advvae": "Adversarial VAE debiasing of embeddings (gradient reversal).",
                "logistic": "Logistic regression on standardised features.",
            },
        },
        spec_text=SPEC_TEXT,
    )
