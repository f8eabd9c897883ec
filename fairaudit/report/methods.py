"""Overview, methods, limitations and provenance, built from the validated spec and the
recorded settings (typed models of :mod:`fairaudit.results`: nothing outside them is shown)."""

from __future__ import annotations

from typing import Any

from fairaudit.caps import largest
from fairaudit.report.arms import KIND_LABELS, small_groups
from fairaudit.report.fmt import is_finite, metric_label, num, param_value
from fairaudit.results import AuditResult, Settings, SplitSummary

KIND_TEXT = {
    "baseline": "The downstream model trained on the original training split; every mitigation is "
    "compared with it on the same test split.",
    "debiaser": "Fitted on the training split to remove demographic information from the "
    "representation; "
    "the downstream model is refit on the debiased training data and evaluated on the "
    "debiased test split.",
    "generator": "A generative model trained on the training split; the downstream model is "
    "trained on "
    "its synthetic images (train on synthetic) or on real plus synthetic images (augment) "
    "and evaluated on the real test split.",
    "predictions": "Scores a model already gave, read from the data file (no model is trained or run "
    "here), evaluated on every test row; the first score column is the reference every other one is "
    "compared with on the same rows.",
}
SPLITS = ("train", "val", "test")


def _component(entry: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, dict):
        params = entry.get("params")
        return str(entry.get("name", "?")), params if isinstance(params, dict) else {}
    return str(entry), {}


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {param_value(v)}" for k, v in params.items()) or "defaults"


def _split_summaries(result: AuditResult) -> dict[str, SplitSummary]:
    return {s: result.dataset.summary[s] for s in SPLITS if s in result.dataset.summary}


def _ci_level(settings: Settings) -> str:
    return f"{100 * settings.ci_level:.0f}%" if is_finite(settings.ci_level) else "95%"


def _sizes(splits: dict[str, SplitSummary]) -> list[str]:
    sizes = []
    for name, sm in splits.items():
        text = f"{num(sm.n)} {name}"
        if sm.n_patients not in (None, sm.n):
            text += f" ({num(sm.n_patients)} patients)"
        sizes.append(text)
    return sizes


def _group_rows(splits: dict[str, SplitSummary], min_size: int | None) -> list[dict[str, Any]]:
    """One row per (attribute, group) of the test split, with its training size."""
    test, train = splits.get("test"), splits.get("train")
    if test is None:
        return []
    rows = []
    for attribute, groups in test.groups.items():
        train_n = {g.group: g.n for g in (train.groups.get(attribute, []) if train is not None else [])}
        kept, left_out = largest([{"g": g, "n": g.n} for g in groups])  # an earlier result may list every group
        rows += [{"attribute": attribute, "group": g.group, "n_train": num(train_n.get(g.group)),
                  "n_test": num(g.n), "prevalence": num(g.prevalence),
                  "small": min_size is not None and g.n < min_size} for g in (r["g"] for r in kept)]
        omitted = test.groups_omitted.get(attribute, {})
        left_out += omitted.get("groups", 0)
        if left_out:
            rows.append({"attribute": attribute, "group": f"… {num(left_out)} smaller groups not listed",
                         "n_train": "", "n_test": num(omitted["n"]) if "n" in omitted else "", "prevalence": "",
                         "small": False})
    return rows


def overview(result: AuditResult) -> dict[str, Any]:
    """What was audited, on which data: the opening lines of the summary and the data table."""
    settings = result.settings
    splits = _split_summaries(result)
    test = splits.get("test")
    return {
        "dataset": result.dataset.name or "unnamed dataset",
        "description": result.dataset.description,
        "modality": test.modality if test is not None else "",
        "sizes": _sizes(splits),
        "prevalence": num(test.prevalence) if test is not None and is_finite(test.prevalence) else "",
        "model": settings.model.name if settings.model is not None else "",
        "attributes": list(settings.attributes),
        "arms": [{"name": a.name, "kind": KIND_LABELS.get(a.kind, a.kind), "failed": a.status == "failed"}
                 for a in result.arms],
        "groups": _group_rows(splits, settings.min_group_size),
        "ci_level": _ci_level(settings),
    }


def _arm_rows(result: AuditResult) -> list[dict[str, Any]]:
    descriptions = result.provenance.descriptions
    return [{"name": arm.name, "kind": KIND_LABELS.get(arm.kind, arm.kind), "plugin": arm.plugin or "",
             "what": KIND_TEXT.get(arm.kind, ""), "description": descriptions.get(arm.plugin or "", ""),
             "params": _params_text(dict(arm.params)), "failed": arm.status == "failed"}
            for arm in result.arms]


def _statistics(result: AuditResult) -> list[str]:
    """The statistical methods, one sentence each, from what the run used."""
    settings = result.settings
    stats = []
    if settings.n_boot is not None:
        stats.append(f"{_ci_level(settings)} confidence intervals: Clopper–Pearson for each group's rates "
                     "(exact; an effective sample size when patients have several rows), a score interval "
                     "on the Hanley–McNeil variance for each group's AUC, and for gaps and ratios MOVER "
                     "intervals over every pair of groups (the upper bound the largest pairwise bound, the "
                     "lower bound Bonferroni-adjusted), which cover a zero gap; their coverage and the "
                     "verdicts' false-FAIL rate are measured by simulation (benchmarks/bench_coverage.py). "
                     f"Other metrics: {num(settings.n_boot)} bootstrap resamples of patients, stratified by group")
    if any(a.versus_baseline for a in result.arms):
        given = any(a.kind == "predictions" for a in result.arms)
        what = "model's" if given else "mitigation's"
        stats.append(
            f"Each {what} change from {settings.reference_arm!r} (task AUC, worst-group AUC, EOD) has a paired "
            "bootstrap interval: the same patient resample scores both arms (stratified by the first "
            "attribute), so the interval is that of the difference"
            + ("" if given else "; it does not include retraining variation"))
    named = sorted({(a.name, other) for a in result.arms for other, found in a.versus.items() if found})
    if named:
        pairs = ", ".join(f"{arm!r} against {other!r}" for arm, other in named)
        stats.append(
            f"Changes between two mitigations named by the spec's compare_with ({pairs}) are computed the same "
            "way, from the same patient resamples: each resample's change from the named arm is the arm's "
            "change from the baseline minus the named arm's")
    repeated = [a for a in result.arms if a.repeats > 1]
    if repeated:
        counts = ", ".join(f"{a.name} {a.repeats}" for a in repeated)
        stats.append(
            f"Variance over training seeds: arms were trained several times with derived seeds ({counts}; "
            "the first with the audit's seed). Each figure of a repeated arm is the mean over its seeds, "
            "± the SD over seeds, with an interval that combines test-set sampling (the largest per-seed "
            "half-width on each side, an upper bound since every seed is scored on the same test "
            "patients) and retraining variance (SD/√N, Student t with Welch–Satterthwaite "
            "degrees of freedom); a paired change is the mean of the per-seed paired changes (seed k "
            "against the reference's seed k) with the same interval. Verdicts judge these intervals; "
            "per-group tables and figures show the first seed's model (docs/statistics.md)")
    if settings.min_group_size is not None:
        stats.append(f"A group is judged on a metric only with at least {settings.min_group_positives} of each "
                     "event the metric counts (positives for TPR, negatives for FPR, both for AUC); metrics over "
                     f"all rows need {settings.min_group_size} rows. Groups below are reported, flagged, and get "
                     "no verdict. A FAIL needs the whole interval beyond the bound and, for a gap or ratio, the "
                     "permutation test (adjusted across the report) rejecting equal groups; a PASS needs the "
                     "whole interval within the bound")
    if settings.multiple_testing:
        stats.append("P-values of group gaps from permutation tests, adjusted across the whole report with "
                     "the Benjamini–Hochberg procedure" if settings.multiple_testing == "bh"
                     else "p-values are not adjusted")
    if is_finite(settings.threshold):
        stats.append(f"Decision threshold {num(settings.threshold)} on the model score for "
                     "rate-based metrics (TPR, FPR, selection rate)")
    return stats


def _threshold_rows(settings: Settings) -> list[dict[str, str]]:
    rows = []
    for name, rule in settings.thresholds.items():
        parts = [f"≥ {num(rule['min'])}"] if rule.get("min") is not None else []
        parts += [f"≤ {num(rule['max'])}"] if rule.get("max") is not None else []
        scope = [f"attribute {rule['attribute']}"] if rule.get("attribute") else []
        scope += ["arms " + ", ".join(map(str, rule["arms"]))] if rule.get("arms") else []
        rows.append({"metric": metric_label(str(name)), "bound": " and ".join(parts) or "–",
                     "scope": "; ".join(scope) or "every arm and attribute"})
    return rows


def _split_text(split: dict[str, Any]) -> str:
    if not split:
        return ""
    if split.get("given"):  # an audit of given scores: no split, rows marked 'val' fix operating points
        text = f"none, the model's scores are given; {num(split.get('n_test'))} test rows"
        if split.get("n_val"):
            text += (f", and {num(split['n_val'])} rows whose {split.get('split_column')} is "
                     f"{split.get('val_value')!r} used only to fix operating points")
        return text
    text = f"test {split.get('test_size')}, validation {split.get('val_size')}"
    if split.get("stratify"):
        text += f", stratified by {', '.join(split['stratify'])}"
    if split.get("seed") is not None:
        text += f", seed {split['seed']}"
    return text


def methods(result: AuditResult) -> dict[str, Any]:
    """The methods section: data, model, each arm's plugin and parameters, metrics, statistics."""
    settings = result.settings
    model = settings.model
    # every listed result (variants and paired changes are summarised, not listed)
    labels = {m.metric: metric_label(m.metric, m.label) for a in result.arms for m in a.metrics if not m.variant}
    return {
        "dataset": result.dataset.name,
        "dataset_params": _params_text(result.dataset.params or _component(result.spec.get("dataset", {}))[1]),
        "split": _split_text(settings.split or result.spec.get("split") or {}),
        "given_scores": bool(settings.split.get("given")),
        "model": model.name if model is not None else "",
        "model_params": _params_text(model.params if model is not None else {}),
        "model_description": result.provenance.descriptions.get(model.name, "") if model is not None else "",
        "arms": _arm_rows(result),
        "metrics": [{"name": n, "params": _params_text(p)}
                    for n, p in map(_component, result.spec.get("metrics") or [])],
        "computed": sorted(set(labels.values()), key=str.lower),
        "statistics": _statistics(result),
        "thresholds": _threshold_rows(settings),
        "seed": settings.seed,
        "device": settings.device or result.provenance.device,
    }


def limitations(result: AuditResult) -> list[dict[str, str]]:
    """Caveats a reviewer must read, generated from what this run contains."""
    out: list[dict[str, str]] = []
    small = sorted({g for a in result.arms if a.status == "ok" for g in small_groups(a)})
    if small:
        out.append(
            {
                "title": "Small groups",
                "text": (
                    "These groups have too few events (positives, negatives, predictions) or rows for "
                    "some metrics and get no verdict on those; their estimates have wide intervals and "
                    "can change a lot with a few patients: " + "; ".join(small) + "."
                ),
            }
        )
    if any(m.role == "probe" for a in result.arms for m in a.metrics):
        out.append(
            {
                "title": "Encoding is not use",
                "text": (
                    "A probe that predicts a demographic attribute from the representation shows "
                    "that the "
                    "information is present, not that the diagnostic model relies on it. A probe "
                    "AUC near 0.5 "
                    "after mitigation does not by itself prove fair outcomes: gaps in error rates "
                    "can remain, "
                    "and information a linear probe misses may still be decodable."
                ),
            }
        )
    out.append(
        {
            "title": "One test set" if result.settings.split.get("given") else "One held-out split",
            "text": (
                ("All estimates come from the one test set the scores were given for. "
                 if result.settings.split.get("given") else
                 "All estimates come from one held-out test split of the same source as the "
                 "training data. ")
                + "Confidence intervals cover sampling variation of that split, not a shift to "
                "another hospital, "
                "scanner or population; external validation is needed before clinical conclusions."
            ),
        }
    )
    out.append(
        {
            "title": "Multiple comparisons",
            "text": (
                "Many gaps are tested at once. Adjusted p-values control the false-discovery rate "
                "across the "
                "report, but the confidence intervals are not adjusted; a single interval that "
                "barely excludes "
                "zero is weak evidence."
            ),
        }
    )
    out.append(
        {
            "title": "Group labels",
            "text": (
                "Groups are the sensitive attributes as recorded in the data; missing values form "
                "their own "
                "group '(missing)'. Coarse or self-reported categories can hide gaps inside a "
                "group."
            ),
        }
    )
    if result.dataset.name.startswith("synthetic"):
        out.append(
            {
                "title": "Synthetic data",
                "text": (
                    "The data are synthetic, with known injected effects; results show how the "
                    "audit behaves, "
                    "not how a clinical model performs."
                ),
            }
        )
    return out + _run_caveats(result)


def _run_caveats(result: AuditResult) -> list[dict[str, str]]:
    """Caveats about what did not run: failed arms and thresholds without a metric."""
    out = []
    failed = [a.name for a in result.arms if a.status == "failed"]
    if failed:
        out.append({"title": "Failed arms",
                    "text": f"These arms failed and are not compared: {', '.join(failed)}. Their errors are "
                            "shown in their chapters."})
    missing = sorted({f"{v.metric} ({v.arm})" for v in result.verdicts if v.outcome == "missing"})
    if missing:
        out.append({"title": "Thresholds without a metric",
                    "text": "Declared thresholds could not be checked because the metric was not computed: "
                            f"{', '.join(missing)}."})
    return out


def _pairs(mapping: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(k), str(v or "–")) for k, v in mapping.items()]


def provenance(result: AuditResult) -> dict[str, Any]:
    """Versions, seeds, device, hashes and timings."""
    p, s = result.provenance, result.settings
    rows = [
        ("Report schema version", str(result.schema_version)),
        ("Audit name", result.name),
        ("Created", result.created),
        ("fairaudit", p.fairaudit_version or "–"),
        ("Python", p.python or "–"),
        ("Platform", p.platform or "–"),
        ("torch", p.torch or "–"),
        ("Device", p.device or s.device or "–"),
        ("Seed", str(s.seed)),
        ("Split seed", str(s.split.get("seed") or s.seed)),
        ("Data hash", p.data_hash or result.dataset.hash or "–"),
        ("Git", p.git or "–"),
    ]
    if p.threads:
        rows.append(("Torch threads", f"{p.threads.get('threads', '–')} ({p.threads.get('reason', '')})"))
    return {
        "rows": rows,
        "plugins": _pairs(p.plugins),
        "packages": _pairs(p.packages),
        "timings": [(str(k), f"{float(v):.1f} s") for k, v in p.timings.items() if is_finite(v)],
    }
