"""Overview, methods, limitations and provenance, built from the spec and the recorded settings.

Only known keys are read (with ``.get``): unknown entries of ``dataset`` or ``provenance`` are
never shown, so an identifier that slipped into ``result.json`` cannot reach a report.
"""

from __future__ import annotations

from typing import Any

from fairaudit.report.arms import KIND_LABELS, PROBE_METRICS, is_derived, small_groups
from fairaudit.report.fmt import is_finite, metric_label, num, param_value
from fairaudit.results import AuditResult

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
}
SPLITS = ("train", "val", "test")


def _spec(result: AuditResult) -> dict[str, Any]:
    """The spec as data (safe YAML load); empty when it cannot be parsed."""
    if not result.spec_text.strip():
        return {}
    try:
        from ruamel.yaml import YAML

        data = YAML(typ="safe", pure=True).load(result.spec_text)
    except Exception:
        return {}
    return data if isinstance(data, dict) else {}


def _component(entry: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, dict):
        params = entry.get("params")
        return str(entry.get("name", "?")), params if isinstance(params, dict) else {}
    return str(entry), {}


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {param_value(v)}" for k, v in params.items()) or "defaults"


def _split_summaries(result: AuditResult) -> dict[str, dict[str, Any]]:
    summary = result.dataset.get("summary") or {}
    return {s: summary[s] for s in SPLITS if isinstance(summary.get(s), dict)}


def overview(result: AuditResult) -> dict[str, Any]:
    """What was audited, on which data: the opening lines of the summary and the data table."""
    settings = result.settings
    splits = _split_summaries(result)
    model = settings.get("model") or {}
    sizes = []
    for s in SPLITS:
        if s in splits:
            sm = splits[s]
            text = f"{num(sm.get('n'))} {s}"
            if sm.get("n_patients") not in (None, sm.get("n")):
                text += f" ({num(sm.get('n_patients'))} patients)"
            sizes.append(text)
    test = splits.get("test", {})
    rows: list[dict[str, Any]] = []
    min_size = settings.get("min_group_size")
    for attribute, groups in (test.get("groups") or {}).items():
        train_groups = {
            g.get("group"): g
            for g in (splits.get("train", {}).get("groups", {}) or {}).get(attribute, [])
            if isinstance(g, dict)
        }
        for g in groups:
            if not isinstance(g, dict):
                continue
            n = g.get("n")
            rows.append(
                {
                    "attribute": str(attribute),
                    "group": str(g.get("group")),
                    "n_train": num(train_groups.get(g.get("group"), {}).get("n")),
                    "n_test": num(n),
                    "prevalence": num(g.get("prevalence")),
                    "small": isinstance(n, int) and isinstance(min_size, int) and n < min_size,
                }
            )
    return {
        "dataset": str(result.dataset.get("name") or "unnamed dataset"),
        "description": str(result.dataset.get("description") or ""),
        "modality": str(test.get("modality") or ""),
        "sizes": sizes,
        "prevalence": num(test.get("prevalence")) if is_finite(test.get("prevalence")) else "",
        "model": str(model.get("name") or ""),
        "attributes": [str(a) for a in settings.get("attributes") or []],
        "arms": [
            {
                "name": a.name,
                "kind": KIND_LABELS.get(a.kind, a.kind),
                "failed": a.status == "failed",
            }
            for a in result.arms
        ],
        "groups": rows,
        "ci_level": f"{100 * settings['ci_level']:.0f}%"
        if is_finite(settings.get("ci_level"))
        else "95%",
    }


def methods(result: AuditResult) -> dict[str, Any]:
    """The methods section: data, model, each arm's plugin and parameters, metrics, statistics."""
    spec = _spec(result)
    settings = result.settings
    descriptions = result.provenance.get("descriptions") or {}
    model = settings.get("model") or {}
    arms = []
    for arm in result.arms:
        plugin = arm.plugin or ""
        text = str(descriptions.get(plugin) or "") if isinstance(descriptions, dict) else ""
        arms.append(
            {
                "name": arm.name,
                "kind": KIND_LABELS.get(arm.kind, arm.kind),
                "plugin": plugin,
                "what": KIND_TEXT.get(arm.kind, ""),
                "description": text,
                "params": _params_text({k: v for k, v in arm.params.items()}),
                "failed": arm.status == "failed",
            }
        )
    metrics = [_component(m) for m in spec.get("metrics") or []]
    labels = {
        m.metric: metric_label(m.metric, m.label)
        for a in result.arms
        for m in a.metrics
        if not is_derived(m.metric)
    }
    computed = sorted(set(labels.values()), key=str.lower)
    split = settings.get("split") or spec.get("split") or {}
    dataset_params = result.dataset.get("params")
    if not isinstance(dataset_params, dict):
        dataset_params = _component(spec.get("dataset", {}))[1]
    stats = []
    if settings.get("n_boot") is not None:
        stats.append(
            f"{num(settings['n_boot'])} bootstrap resamples (patients resampled, stratified by "
            f"group) for {overview(result)['ci_level']} percentile confidence intervals"
        )
    if any(a.versus_baseline for a in result.arms):
        stats.append(
            "Each mitigation's change from the baseline (task AUC, worst-group AUC, EOD) has a paired "
            "bootstrap interval: the same patient resample scores both arms (stratified by the first "
            "attribute), so the interval is that of the difference; it does not include retraining variation"
        )
    if settings.get("min_group_size") is not None:
        stats.append(
            f"Groups with fewer than {settings['min_group_size']} test samples are reported but "
            "flagged too small: they receive no verdict"
        )
    mt = settings.get("multiple_testing")
    if mt:
        stats.append(
            "P-values of group gaps from permutation tests, adjusted across the whole report with "
            "the Benjamini–Hochberg procedure"
            if mt == "bh"
            else "p-values are not adjusted"
        )
    if is_finite(settings.get("threshold")):
        stats.append(
            f"Decision threshold {num(settings['threshold'])} on the model score for "
            "rate-based metrics (TPR, FPR, selection rate)"
        )
    thresholds = []
    for name, rule in (settings.get("thresholds") or {}).items():
        if not isinstance(rule, dict):
            continue
        parts = []
        if rule.get("min") is not None:
            parts.append(f"≥ {num(rule['min'])}")
        if rule.get("max") is not None:
            parts.append(f"≤ {num(rule['max'])}")
        scope = []
        if rule.get("attribute"):
            scope.append(f"attribute {rule['attribute']}")
        if rule.get("arms"):
            scope.append("arms " + ", ".join(map(str, rule["arms"])))
        thresholds.append(
            {
                "metric": metric_label(str(name)),
                "bound": " and ".join(parts) or "–",
                "scope": "; ".join(scope) or "every arm and attribute",
            }
        )
    return {
        "dataset": str(result.dataset.get("name") or ""),
        "dataset_params": _params_text(dataset_params),
        "split": (
            f"test {split.get('test_size')}, validation {split.get('val_size')}"
            + (
                f", stratified by {', '.join(split.get('stratify') or [])}"
                if split.get("stratify")
                else ""
            )
            + (f", seed {split['seed']}" if split.get("seed") is not None else "")
        )
        if split
        else "",
        "model": str(model.get("name") or ""),
        "model_params": _params_text(model.get("params") or {}),
        "model_description": str(descriptions.get(model.get("name"), ""))
        if isinstance(descriptions, dict)
        else "",
        "arms": arms,
        "metrics": [{"name": n, "params": _params_text(p)} for n, p in metrics],
        "computed": computed,
        "statistics": stats,
        "thresholds": thresholds,
        "seed": settings.get("seed"),
        "device": str(settings.get("device") or result.provenance.get("device") or ""),
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
                    "These groups are below the minimum group size and get no verdict; their "
                    "estimates have wide "
                    "intervals and can change a lot with a few patients: " + "; ".join(small) + "."
                ),
            }
        )
    if any(m.metric in PROBE_METRICS for a in result.arms for m in a.metrics):
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
            "title": "One held-out split",
            "text": (
                "All estimates come from one held-out test split of the same source as the "
                "training data. "
                "Confidence intervals cover sampling variation of that split, not a shift to "
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
    if str(result.dataset.get("name", "")).startswith("synthetic"):
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
    failed = [a.name for a in result.arms if a.status == "failed"]
    if failed:
        out.append(
            {
                "title": "Failed arms",
                "text": (
                    "These arms failed and are not compared: "
                    + ", ".join(failed)
                    + ". Their errors are shown "
                    "in their chapters."
                ),
            }
        )
    missing = sorted({f"{v.metric} ({v.arm})" for v in result.verdicts if v.outcome == "missing"})
    if missing:
        out.append(
            {
                "title": "Thresholds without a metric",
                "text": (
                    "Declared thresholds could not be checked because the metric was not computed: "
                    + ", ".join(missing)
                    + "."
                ),
            }
        )
    return out


def provenance(result: AuditResult) -> dict[str, Any]:
    """Versions, seeds, device, hashes and timings (known keys only)."""
    p = result.provenance
    s = result.settings
    rows = [
        ("Report schema version", str(result.schema_version)),
        ("Audit name", result.name),
        ("Created", result.created),
        ("fairaudit", str(p.get("fairaudit_version") or "–")),
        ("Python", str(p.get("python") or "–")),
        ("Platform", str(p.get("platform") or "–")),
        ("torch", str(p.get("torch") or (p.get("packages") or {}).get("torch") or "–")),
        ("Device", str(p.get("device") or s.get("device") or "–")),
        ("Seed", str(s.get("seed", "–"))),
        ("Split seed", str((s.get("split") or {}).get("seed") or s.get("seed", "–"))),
        ("Data hash", str(p.get("data_hash") or result.dataset.get("hash") or "–")),
        ("Git", str(p.get("git") or "–")),
    ]
    plugins = p.get("plugins") or {}
    packages = p.get("packages") or {}
    timings = p.get("timings") or {}
    return {
        "rows": rows,
        "plugins": [(str(k), str(v or "–")) for k, v in plugins.items()]
        if isinstance(plugins, dict)
        else [],
        "packages": [(str(k), str(v or "–")) for k, v in packages.items()]
        if isinstance(packages, dict)
        else [],
        "timings": [(str(k), f"{float(v):.1f} s") for k, v in timings.items() if is_finite(v)]
        if isinstance(timings, dict)
        else [],
    }
