"""Each arm's change from the reference arm (the baseline, or the first model of an audit of given
scores), with paired-bootstrap intervals, for the results.

The runner keeps every arm's test scores (the resume store saves them beside the arm's results,
so that a resumed audit can still pair an arm finished earlier); once all arms are done,
:func:`attach_paired_changes` fills ``ArmResult.versus_baseline`` from every metric that offers
paired changes, and :func:`attach_named_changes` fills ``ArmResult.versus`` for the arms whose spec
entry names another arm in ``compare_with``: the same metrics' paired changes with that arm as
the reference.  Both draw the same patient resamples (the metric seeds its bootstrap from the
audit's seed and stratifies by the test split's groups, neither of which depends on the arms), so
an arm's change from the named arm is, resample by resample, its change from the baseline minus
the named arm's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fairaudit.base import BaseMetric, PairedContext, StatsConfig
from fairaudit.data import AuditDataset
from fairaudit.results import ArmResult, MetricResult
from fairaudit.spec.models import AuditSpec


def attach_paired_changes(
    arms: list[ArmResult],
    scores: Mapping[str, np.ndarray],
    test: AuditDataset,
    spec: AuditSpec,
    metrics: Sequence[BaseMetric],
    stats: StatsConfig,
    reference: str = "baseline",
) -> list[str]:
    """Fill ``versus_baseline`` of every scored arm with its change from the ``reference`` arm,
    from each metric that offers paired changes (:meth:`~fairaudit.base.BaseMetric.paired_changes`);
    returns warnings for the report (a failing metric is a warning too: it never costs the arms
    already trained)."""
    offering = [m for m in metrics if m.offers_paired_changes()]
    if not any(a.name == reference and a.status == "ok" for a in arms) or not offering:
        return []
    paired, warnings = _scored(arms, scores, {m.name for m in offering}, reference)
    if reference not in paired or len(paired) < 2:
        return warnings
    changes = _changes_from(reference, paired, test, spec, offering, stats, warnings)
    for arm in arms:
        arm.versus_baseline += changes.get(arm.name, [])
    return warnings


def attach_named_changes(
    arms: list[ArmResult],
    scores: Mapping[str, np.ndarray],
    test: AuditDataset,
    spec: AuditSpec,
    metrics: Sequence[BaseMetric],
    stats: StatsConfig,
    pairs: Mapping[str, str],
) -> list[str]:
    """Fill ``versus[reference]`` of every arm named in ``pairs`` (``arm -> reference arm``, from
    the spec's ``compare_with``) with its change from that reference, computed as
    :func:`attach_paired_changes` computes the change from the baseline; returns warnings for
    the report (an arm or reference that failed or kept no scores has no such change)."""
    offering = [m for m in metrics if m.offers_paired_changes()]
    present = {a.name: a for a in arms}
    warnings: list[str] = []
    if not offering:
        return warnings
    by_reference: dict[str, list[str]] = {}
    for arm, reference in pairs.items():
        if arm in present and present[arm].status == "ok":
            by_reference.setdefault(reference, []).append(arm)
    for reference, compared in by_reference.items():
        ref = present.get(reference)
        if ref is None:  # not in this batch (a later repeat of an arm whose reference has none)
            continue
        if ref.status != "ok":
            warnings += [f"arm {name!r}: no change from {reference!r} (compare_with): {reference!r} failed"
                         for name in compared]
            continue
        chosen = [a for a in arms if a.name in (reference, *compared)]
        paired, missing = _scored(chosen, scores, {m.name for m in offering}, reference)
        warnings += missing
        if reference not in paired or len(paired) < 2:
            continue
        changes = _changes_from(reference, paired, test, spec, offering, stats, warnings)
        for name in compared:
            if name in changes:
                present[name].versus.setdefault(reference, []).extend(changes[name])
    return warnings


def _changes_from(reference: str, paired: dict[str, np.ndarray], test: AuditDataset, spec: AuditSpec,
                  offering: Sequence[BaseMetric], stats: StatsConfig,
                  warnings: list[str]) -> dict[str, list[MetricResult]]:
    """Every offering metric's paired changes of the ``paired`` arms from ``reference``, by arm, in
    metric order; a metric that fails adds a warning instead."""
    ctx = PairedContext(
        y_true=test.y, scores=paired, sensitive=test.sensitive, patient_ids=test.patient_ids,
        reference=reference, threshold=spec.decision_threshold, attributes=list(spec.attributes),
        intersections=[list(c) for c in spec.intersections], stats=stats)
    merged: dict[str, list[MetricResult]] = {}
    for metric in offering:
        try:
            changes = metric.paired_changes(ctx)
        except (ValueError, FloatingPointError) as exc:
            warnings.append(f"paired changes from {reference!r} ({metric.name}) not computed: {exc}")
            continue
        for name, results in changes.items():
            merged.setdefault(name, []).extend(results)
    return merged


def _scored(arms: list[ArmResult], scores: Mapping[str, np.ndarray], producers: set[str],
            reference: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """The test scores of every arm a paired-change metric scored (``producers``), and a warning
    for each such arm whose scores were not kept (finished by an earlier version)."""
    scored = [a.name for a in arms if a.status == "ok" and any(r.plugin in producers and r.status == "ok"
                                                                for r in a.metrics)]
    warnings = [f"arm {name!r}: no saved test scores (finished by an earlier version?); its change from "
                f"{reference!r} has no paired interval" for name in scored if name not in scores]
    return {name: scores[name] for name in scored if name in scores}, warnings
