"""``group_metrics``: per-group performance, fairness gaps and ratios, with bootstrap CIs and
permutation p-values, for every attribute and intersection of the spec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from fairaudit.base import BaseMetric, MetricContext, MetricOutput, PairedContext
from fairaudit.builtin.metrics._common import (
    attribute_sets_of,
    group_values,
    iter_groups,
    not_applicable,
    num,
    num_list,
)
from fairaudit.results import MetricResult
from fairaudit.stats import confusion as cm
from fairaudit.stats import intervals as ci
from fairaudit.stats.bootstrap import (
    CountsBootstrap,
    Interval,
    ScoreBootstrap,
    bootstrap_confusion_counts,
    bootstrap_score_metrics,
    equalized_odds_fn,
    make_rng,
)
from fairaudit.stats.groups import Groups, restrict
from fairaudit.stats.operating_point import threshold_at_specificity
from fairaudit.stats.permutation import permutation_test_gap, permutation_test_score_gap
from fairaudit.stats.ranking import SCORE_METRICS, calibration_points, roc_points

if TYPE_CHECKING:
    from fairaudit.stats.paired import PairedChange

#: Default per-group metrics (confusion rates at the decision threshold, score metrics, sens@spec).
DEFAULT_METRICS = [
    "true_positive_rate",
    "false_positive_rate",
    "positive_predictive_value",
    "negative_predictive_value",
    "selection_rate",
    "accuracy",
    "roc_auc",
    "average_precision",
    "brier_score",
    "expected_calibration_error",
    "sensitivity_at_specificity",
]
SENS_AT_SPEC = "sensitivity_at_specificity"
#: fairlearn's names for the between-groups gaps of some rates.
DIFF_NAMES = {
    "true_positive_rate": "equal_opportunity_difference",
    "selection_rate": "demographic_parity_difference",
    "roc_auc": "auc_difference",
}
RATIO_NAMES = {
    "true_positive_rate": "equal_opportunity_ratio",
    "selection_rate": "demographic_parity_ratio",
}
WORST_NAMES = {"roc_auc": "worst_group_auc"}
#: The key figures of an audit (the executive summary compares arms on them).
HEADLINE = frozenset({"roc_auc", "worst_group_auc", "equal_opportunity_difference"})
#: AIF360-style signed variants: (result, the rates it needs, role).
SIGNED = (
    ("equal_opportunity_difference_signed", ("true_positive_rate",), "gap"),
    ("average_odds_difference_signed", ("true_positive_rate", "false_positive_rate"), "gap"),
    ("statistical_parity_difference_signed", ("selection_rate",), "gap"),
    ("disparate_impact_ratio", ("selection_rate",), "ratio"),
)
UNSIGNED = "unsigned max − min over groups (fairlearn between_groups)"
TO_OVERALL = "max over groups of |group − overall| (fairlearn to_overall)"
RATIO = "min / max over groups (fairlearn between_groups); 1 = parity"
RATIO_OVERALL = "smallest group/overall ratio, inverted when > 1 (fairlearn to_overall); 1 = parity"
#: Labels of the paired changes between arms (this plugin's :meth:`GroupMetrics.paired_changes`).
CHANGE_LABELS = {
    "roc_auc": "Change in ROC AUC",
    "worst_group_auc": "Change in worst-group ROC AUC",
    "equal_opportunity_difference": "Change in the equal opportunity difference",
}
PAIRED_NOTE = (
    "this arm minus the reference arm on the same test patients; the interval resamples patients once "
    "for both arms (paired bootstrap), so it measures the change itself"
)


def _diff_name(metric: str) -> str:
    return DIFF_NAMES.get(metric, f"{metric}_difference")


def _ratio_name(metric: str) -> str:
    return RATIO_NAMES.get(metric, f"{metric}_ratio")


def _worst_name(metric: str) -> str:
    return WORST_NAMES.get(metric, f"worst_group_{metric}")


def _output(name: str, role: str, derived_from: str | None = None, *, variant: bool = False,
            higher_is_better: bool | None = None) -> MetricOutput:
    return MetricOutput(name, role, headline=name in HEADLINE, derived_from=derived_from,  # type: ignore[arg-type]
                        variant=variant, higher_is_better=higher_is_better)


def _per_group_outputs(metric: str, higher_is_better: bool | None, *, ratios: bool,
                       to_overall: bool) -> list[MetricOutput]:
    """A per-group metric, its max − min gap and the variants emitted beside it."""
    diff, ratio = _diff_name(metric), _ratio_name(metric)
    out = [_output(metric, "value", higher_is_better=higher_is_better),
           _output(diff, "gap", metric, higher_is_better=False)]
    if to_overall:
        out.append(_output(f"{diff}_to_overall", "gap", metric, variant=True, higher_is_better=False))
    if ratios:
        out.append(_output(ratio, "ratio", metric, variant=True, higher_is_better=True))
    if ratios and to_overall:
        out.append(_output(f"{ratio}_to_overall", "ratio", metric, variant=True, higher_is_better=True))
    if higher_is_better is not None:
        out.append(_output(_worst_name(metric), "worst_group", metric, variant=True,
                           higher_is_better=higher_is_better))
    return out


@dataclass
class _Attr:
    """What every result of one attribute shares."""

    groups: Groups
    n: np.ndarray
    n_pos: np.ndarray
    threshold_note: str


class GroupMetrics(BaseMetric):
    """Group metrics of a binary classifier, gaps between groups, CIs and permutation tests.

    For every attribute (and intersection) and every metric in ``metrics`` it returns one
    result holding the overall value and ``per_group`` values with bootstrap CIs, plus gap
    results: between-groups difference (max − min, with a permutation p-value), ratio (min/max),
    their ``_to_overall`` variants, and the worst-group value.  fairlearn's names are used where
    fairlearn has them (``equal_opportunity_difference``, ``equalized_odds_difference``,
    ``demographic_parity_ratio``...), and the values equal fairlearn's.  Signed two-group
    variants follow AIF360 (``rate(others pooled) − rate(reference)``).

    **Intervals** come from :mod:`fairaudit.stats.intervals` (Clopper–Pearson per group, with
    the Korn–Graubard design effect when patients have several rows; a score-type interval for
    AUC; MOVER-based bounds for gaps, ratios and worst groups that correct the upward bias of
    ``max − min``).  ``n_boot = 0`` switches intervals off.

    **Too small to judge: one rule, on events.**  A group is judged for a metric only when it has
    at least ``stats.min_group_positives`` of each kind of event the metric counts: positives for
    TPR/FNR/sensitivity, negatives for FPR/TNR, predicted positives for PPV, predicted negatives
    for NPV, positives *and* negatives for AUC/AP; for metrics over every row (selection rate,
    accuracy, Brier, ECE) the events are rows and the minimum is ``stats.min_group_size``.
    Other groups are flagged ``too_small`` and left out of gaps and worst-group values; each
    result records why in ``details["excluded"]`` (``[{"group": ..., "reason": "2 negatives <
    5"}]``) and a note.  A gap gets status ``"too_small"`` (no value, no verdict) only when
    fewer than two groups are judgeable.

    Parameters
    ----------
    metrics:
        Per-group metrics (default :data:`DEFAULT_METRICS`; also ``true_negative_rate``,
        ``false_negative_rate``).
    target_specificity:
        Specificity for ``sensitivity_at_specificity``; the threshold is fixed on validation
        scores (never on test); without validation scores that metric is not applicable.
    ece_bins, ece_strategy:
        Calibration bins, computed once on the pooled test scores and shared by every group:
        ``"quantile"`` (equal mass) or ``"uniform"`` (equal width).
    reference_groups:
        Reference ("privileged") group per attribute for the signed AIF360-style variants;
        default: the largest group.
    stratified:
        Bootstrap patients within their group (default) or over everyone.
    missing_attribute:
        Rows with a missing attribute value: ``"group"`` (the group ``"(missing)"``) or ``"drop"``.
    max_groups:
        Attributes with more groups are refused (a continuous attribute such as raw age makes
        every value a group; bin it first).
    ratios, to_overall, permutation_tests, curves:
        Switch off parts of the output.
    permutation_score_metrics:
        Score metrics whose gap gets a permutation p-value (default ``["roc_auc"]``: each
        permutation re-scores every group, ``O(n)`` per group; confusion-rate gaps are always
        tested, exactly and cheaply).
    """

    name: ClassVar[str] = "group_metrics"
    description: ClassVar[str] = (
        "Per-group TPR/FPR/PPV/NPV/selection rate/AUC/AP/Brier/ECE/"
        "sensitivity at specificity, fairlearn gaps and ratios, bootstrap "
        "CIs, permutation tests"
    )
    requires: ClassVar[frozenset[str]] = frozenset({"scores"})

    def __init__(
        self,
        metrics: list[str] | None = None,
        target_specificity: float = 0.8,
        ece_bins: int = 10,
        ece_strategy: Literal["quantile", "uniform"] = "quantile",
        reference_groups: dict[str, str] | None = None,
        stratified: bool = True,
        missing_attribute: Literal["group", "drop"] = "group",
        max_groups: int = 50,
        ratios: bool = True,
        to_overall: bool = True,
        permutation_tests: bool = True,
        permutation_score_metrics: list[str] | None = None,
        curves: bool = True,
    ):
        self.metrics = metrics
        self.target_specificity = target_specificity
        self.ece_bins = ece_bins
        self.ece_strategy = ece_strategy
        self.reference_groups = reference_groups
        self.stratified = stratified
        self.missing_attribute = missing_attribute
        self.max_groups = max_groups
        self.ratios = ratios
        self.to_overall = to_overall
        self.permutation_tests = permutation_tests
        self.permutation_score_metrics = permutation_score_metrics
        self.curves = curves

    @classmethod
    def get_test_params(cls) -> list[dict[str, object]]:
        return [
            {},
            {
                "metrics": ["true_positive_rate", "selection_rate", "roc_auc"],
                "ece_strategy": "uniform",
                "curves": False,
            },
        ]

    # ------------------------------------------------------------------ declarations
    def _metric_names(self) -> list[str]:
        return list(self.metrics) if self.metrics is not None else list(DEFAULT_METRICS)

    def outputs(self) -> list[MetricOutput]:
        names = self._metric_names()
        out: list[MetricOutput] = []
        for m in names:
            if m in cm.RATES or m == SENS_AT_SPEC:
                hib = cm.RATES[m].higher_is_better if m in cm.RATES else True
                out += _per_group_outputs(m, hib, ratios=self.ratios, to_overall=self.to_overall)
            elif m in SCORE_METRICS:
                hib = SCORE_METRICS[m][1]
                out += [_output(m, "value", higher_is_better=hib),
                        _output(_diff_name(m), "gap", m, higher_is_better=False),
                        _output(_worst_name(m), "worst_group", m, variant=True, higher_is_better=hib)]
        if {"true_positive_rate", "false_positive_rate"} <= set(names):
            both = "true_positive_rate, false_positive_rate"
            out += [_output("equalized_odds_difference", "gap", both, higher_is_better=False),
                    _output("equalized_odds_difference_mean", "gap", both, variant=True, higher_is_better=False)]
            if self.ratios:
                out.append(_output("equalized_odds_ratio", "ratio", both, variant=True, higher_is_better=True))
        out += [_output(name, role, ", ".join(rates), variant=True) for name, rates, role in SIGNED
                if set(rates) <= set(names)]
        if self.curves:
            out += [_output("roc_curve", "curve"), _output("calibration_curve", "curve")]
        return out

    def _declared(self, metric: str) -> dict[str, object]:
        """Role, headline, origin and variant flag of ``metric`` (see :meth:`outputs`)."""
        if not hasattr(self, "_catalogue"):
            self._catalogue = {o.name: o for o in self.outputs()}
        found = self._catalogue.get(metric)
        return found.declared() if found is not None else {}

    # ------------------------------------------------------------------ entry point
    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        if ctx.y_score is None:
            return [not_applicable(self.name, self.name, None, "no scores to evaluate")]
        y = cm._binary(ctx.y_true, "y_true")
        score = cm.check_scores(ctx.y_score, len(y))
        metrics = list(self.metrics) if self.metrics is not None else list(DEFAULT_METRICS)
        known = set(cm.RATES) | set(SCORE_METRICS) | {SENS_AT_SPEC}
        unknown = sorted(set(metrics) - known)
        if unknown:
            raise ValueError(
                f"group_metrics: unknown metric(s) {unknown}; choose from {sorted(known)}"
            )
        results: list[MetricResult] = []
        for groups in iter_groups(ctx, self.missing_attribute):
            if groups.n_groups > self.max_groups:
                results.append(
                    not_applicable(
                        self.name,
                        self.name,
                        groups.attribute,
                        f"attribute {groups.attribute!r} has {groups.n_groups} groups "
                        f"(> max_groups={self.max_groups}); a continuous attribute makes "
                        "every value a group: bin it",
                    )
                )
                continue
            if groups.n_groups < 2:
                results.append(
                    not_applicable(
                        self.name,
                        self.name,
                        groups.attribute,
                        f"attribute {groups.attribute!r} has fewer than two groups",
                    )
                )
                continue
            results += self._attribute(ctx, y, score, groups, metrics)
        return results

    def _attribute(
        self,
        ctx: MetricContext,
        y: np.ndarray,
        score: np.ndarray,
        groups: Groups,
        metrics: list[str],
    ) -> list[MetricResult]:
        st = ctx.stats
        kept = groups.kept
        n = np.bincount(groups.codes[kept], minlength=groups.n_groups)
        n_pos = np.bincount(groups.codes[kept], weights=y[kept], minlength=groups.n_groups).astype(
            int
        )
        note = f"predicted positive when score >= {ctx.threshold:g} (decision threshold)"
        attr = _Attr(groups, n, n_pos, note)
        out: list[MetricResult] = []
        rates = [m for m in metrics if m in cm.RATES]
        if rates:
            y_pred = (score >= ctx.threshold).astype(np.int64)
            boot, _ = bootstrap_confusion_counts(
                y,
                y_pred,
                groups,
                patient_ids=ctx.patient_ids,
                n_boot=st.n_boot,
                ci_level=st.ci_level,
                seed=make_rng(st.seed, groups.attribute, "confusion"),
                stratified=self.stratified,
            )
            for m in rates:
                out += self._rate(ctx, attr, boot, y, y_pred, m, m, note)
            if {"true_positive_rate", "false_positive_rate"} <= set(rates):
                out += self._equalized_odds(ctx, attr, boot, y, y_pred)
            out += self._signed(ctx, attr, boot, rates)
        scores = [m for m in metrics if m in SCORE_METRICS]
        if scores:
            out += self._scores(ctx, attr, y, score, scores)
        if SENS_AT_SPEC in metrics:
            out += self._sens_at_spec(ctx, attr, y, score)
        if self.curves:
            out += self._curves(attr, y, score)
        return out

    # ------------------------------------------------------------------ paired changes
    def paired_changes(self, ctx: PairedContext) -> dict[str, list[MetricResult]]:
        """Each arm's change from ``ctx.reference`` in task AUC, worst-group AUC and, per
        attribute, EOD, with paired-bootstrap intervals; groups judged as :meth:`compute` does."""
        from fairaudit.stats.paired import paired_changes

        st = ctx.stats
        changes = paired_changes(
            ctx.y_true, ctx.scores, ctx.sensitive, attribute_sets_of(ctx.attributes, ctx.intersections),
            reference=ctx.reference, patient_ids=ctx.patient_ids, threshold=ctx.threshold,
            n_boot=st.n_boot, ci_level=st.ci_level, seed=make_rng(st.seed, "paired_changes"),
            min_group_positives=st.min_group_positives,
            missing=self.missing_attribute, max_groups=self.max_groups,
        )
        emitted = {o.name for o in self.outputs()}
        return {arm: [self._change(c, ctx.reference) for c in found if c.metric in emitted]
                for arm, found in changes.items()}

    def _change(self, c: PairedChange, reference: str) -> MetricResult:
        where = f" ({c.attribute})" if c.attribute else ""
        return MetricResult(
            metric=c.metric,
            plugin=self.name,
            attribute=c.attribute,
            label=f"{CHANGE_LABELS[c.metric]} from {reference}{where}",
            role="change",
            derived_from=c.metric,
            **c.interval(),
            notes=[PAIRED_NOTE],
            details={"reference": reference, "groups": c.groups, "excludes_zero": c.excludes_zero},
        )

    # ------------------------------------------------------------------ helpers
    def _too_small(
        self, ctx: MetricContext, attr: _Attr, events: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, list[dict[str, str]]]:
        """The groups with too few events to judge (the class docstring's rule), and why."""
        st = ctx.stats
        minimum = {k: st.min_group_size if k == "rows" else st.min_group_positives for k in events}
        return ci.too_few_events(attr.groups.names, events, minimum)

    def _excluded_note(self, attr: _Attr, why: list[dict[str, str]]) -> list[str]:
        if not why:
            return []
        left_out = "; ".join(f"{w['group']!r} ({w['reason']})" for w in why)
        return [f"too few events to judge, left out: {left_out}"]

    def _ci(self, ctx: MetricContext, point: object, limits: tuple | ci.Bounds) -> Interval:
        """The point value with an interval of :mod:`fairaudit.stats.intervals` (none without resampling)."""
        lo, hi = (limits.ci_low, limits.ci_high) if isinstance(limits, ci.Bounds) else limits
        if ctx.stats.n_boot <= 0:
            lo = hi = np.full(np.shape(point), np.nan)
        return Interval(point, lo, hi)  # type: ignore[arg-type]

    def _result(
        self,
        metric: str,
        attr: _Attr,
        est: Interval | None,
        *,
        label: str,
        higher_is_better: bool | None,
        notes: list[str],
        p_value: float | None = None,
        status: str = "ok",
        per_group: list | None = None,
        details: dict | None = None,
    ) -> MetricResult:
        value = low = high = None
        if est is not None:
            value, low, high = num(est.value), num(est.ci_low), num(est.ci_high)
        if status == "ok" and value is None:
            status = "not_applicable"
            notes = [*notes, "undefined on these data (0/0)"]
        return MetricResult(
            **self._declared(metric),  # type: ignore[arg-type]
            metric=metric,
            plugin=self.name,
            attribute=attr.groups.attribute,
            label=label,
            value=value,
            ci_low=low,
            ci_high=high,
            p_value=num(p_value),
            higher_is_better=higher_is_better,
            status=status,  # type: ignore[arg-type]
            per_group=per_group or [],
            notes=notes,
            details=details or {},
        )

    def _too_small_gap(
        self, metric: str, attr: _Attr, label: str, why: list[dict[str, str]], higher_is_better: bool | None
    ) -> MetricResult:
        return self._result(
            metric,
            attr,
            None,
            label=label,
            higher_is_better=higher_is_better,
            status="too_small",
            notes=[
                "fewer than two groups with enough events to judge "
                "(min_group_positives; min_group_size for rows); no verdict",
                *self._excluded_note(attr, why),
            ],
            details={"excluded": why},
        )

    def _p_value_counts(
        self,
        ctx: MetricContext,
        attr: _Attr,
        y: np.ndarray,
        y_pred: np.ndarray,
        judge: np.ndarray,
        metric: str,
    ) -> float | None:
        if not self.permutation_tests or ctx.stats.n_permutations <= 0:
            return None
        res = permutation_test_gap(
            y,
            y_pred,
            restrict(attr.groups, judge),
            metric=metric,
            patient_ids=ctx.patient_ids,
            n_permutations=ctx.stats.n_permutations,
            seed=make_rng(ctx.stats.seed, attr.groups.attribute, "perm", metric),
        )
        return res.p_value

    # ------------------------------------------------------------------ confusion rates
    def _rate(
        self,
        ctx: MetricContext,
        attr: _Attr,
        boot: CountsBootstrap,
        y: np.ndarray,
        y_pred: np.ndarray,
        rate_name: str,
        metric: str,
        note: str,
        label: str | None = None,
    ) -> list[MetricResult]:
        spec = cm.RATES[rate_name]
        label = label or spec.label
        hib = spec.higher_is_better
        den = cm.denominators(boot.counts, rate_name)
        small, why = self._too_small(ctx, attr, {ci.rate_events(rate_name): den})
        iv = ci.RateIntervals(boot.counts, rate_name, boot.clusters, ctx.stats.ci_level)
        per = self._ci(ctx, cm.rate(boot.counts, rate_name), iv.per_group())
        overall = self._ci(ctx, cm.rate(boot.counts.sum(-2), rate_name), iv.overall())
        gv = group_values(
            attr.groups, attr.n, attr.n_pos, per.value, per.ci_low, per.ci_high, small
        )
        out = [
            self._result(
                metric,
                attr,
                overall,
                label=label,
                higher_is_better=hib,
                notes=[note],
                per_group=gv,
                details={"denominator": [int(d) for d in den], "excluded": why},
            )
        ]
        judge = ~small
        names = (_diff_name(metric), _ratio_name(metric))
        if judge.sum() < 2:
            out.append(self._too_small_gap(names[0], attr, f"{label}: gap", why, False))
            return out
        idx = np.flatnonzero(judge)
        excluded = self._excluded_note(attr, why)
        iv.prepare(len(idx))

        def on_groups(
            agg: Callable[..., np.ndarray], method: str
        ) -> Callable[[np.ndarray], np.ndarray]:
            return lambda c: agg(
                cm.rate(c[..., idx, :], rate_name), cm.rate(c.sum(-2), rate_name), method
            )

        diff = self._ci(ctx, on_groups(cm.difference, "between_groups")(boot.counts), iv.gap(idx))
        bounds_of = {
            f"{names[0]}_to_overall": iv.to_overall,
            names[1]: iv.ratio,
            f"{names[1]}_to_overall": iv.ratio_to_overall,
        }
        p = self._p_value_counts(ctx, attr, y, y_pred, judge, rate_name)
        out.append(
            self._result(
                names[0],
                attr,
                diff,
                label=f"{label}: max − min gap",
                higher_is_better=False,
                p_value=p,
                notes=[UNSIGNED, note, *excluded],
                details={"groups": [attr.groups.names[i] for i in idx], "excluded": why, "tested_by": names[0]},
            )
        )
        secondary = [
            (f"{names[0]}_to_overall", cm.difference, "to_overall", "largest gap to overall", False, TO_OVERALL),
            (names[1], cm.ratio, "between_groups", "min/max ratio", True, RATIO),
            (f"{names[1]}_to_overall", cm.ratio, "to_overall", "smallest ratio to overall", True, RATIO_OVERALL),
        ]
        for name, agg, method, what, better_high, explanation in secondary:
            wanted = (self.ratios or agg is not cm.ratio) and (self.to_overall or method != "to_overall")
            if not wanted:
                continue
            out.append(
                self._result(
                    name,
                    attr,
                    self._ci(ctx, on_groups(agg, method)(boot.counts), bounds_of[name](idx)),
                    label=f"{label}: {what}",
                    higher_is_better=better_high,
                    notes=[explanation, note, *excluded],
                    details={"excluded": why, "tested_by": names[0]},
                )
            )
        if hib is not None:
            est = self._ci(ctx, cm.worst(cm.rate(boot.counts[idx], rate_name), hib), iv.worst(idx, hib))
            worst_i = (
                idx[int(np.nanargmin(per.value[idx]) if hib else np.nanargmax(per.value[idx]))]
                if np.isfinite(per.value[idx]).any()
                else None
            )
            out.append(
                self._result(
                    _worst_name(metric),
                    attr,
                    est,
                    label=f"{label}: worst group",
                    higher_is_better=hib,
                    notes=[note, *excluded],
                    details={"group": None if worst_i is None else attr.groups.names[worst_i], "excluded": why},
                )
            )
        return out

    def _equalized_odds(
        self,
        ctx: MetricContext,
        attr: _Attr,
        boot: CountsBootstrap,
        y: np.ndarray,
        y_pred: np.ndarray,
    ) -> list[MetricResult]:
        den_p = cm.denominators(boot.counts, "true_positive_rate")
        den_n = cm.denominators(boot.counts, "false_positive_rate")
        small, why = self._too_small(ctx, attr, {"positives": den_p, "negatives": den_n})
        judge = ~small
        label = "Equalized odds"
        if judge.sum() < 2:
            return [self._too_small_gap("equalized_odds_difference", attr, label, why, False)]
        sub = boot.subset(judge)
        notes = [
            f"{UNSIGNED}, of TPR and FPR",
            attr.threshold_note,
            *self._excluded_note(attr, why),
        ]
        p = self._p_value_counts(ctx, attr, y, y_pred, judge, "equalized_odds")
        # the maximum (or mean) of two gaps: lower bounds Bonferroni-split over both rates
        level, every = ctx.stats.ci_level, np.arange(int(judge.sum()))
        tpr = ci.RateIntervals(sub.counts, "true_positive_rate", sub.clusters, level)
        fpr = ci.RateIntervals(sub.counts, "false_positive_rate", sub.clusters, level)
        tpr.prepare(len(every))
        fpr.prepare(len(every))
        eo_max = ci.combine_max([tpr.gap(every, family=2), fpr.gap(every, family=2)])
        eo_mean = ci.combine_mean([r.gap(every, family=2, split_upper=2) for r in (tpr, fpr)])
        eo = {agg: equalized_odds_fn(kind, agg, "between_groups", np.nan)(sub.counts)
              for kind, agg in (("difference", "worst_case"), ("difference", "mean"))}
        out = [
            self._result(
                "equalized_odds_difference",
                attr,
                self._ci(ctx, eo["worst_case"], eo_max),
                label="Equalized odds difference (worst of TPR, FPR gaps)",
                higher_is_better=False,
                p_value=p,
                notes=["agg='worst_case'", *notes],
                details={"excluded": why},
            ),
            self._result(
                "equalized_odds_difference_mean",
                attr,
                self._ci(ctx, eo["mean"], eo_mean),
                label="Equalized odds difference (mean of TPR, FPR gaps)",
                higher_is_better=False,
                notes=["agg='mean'", *notes],
                details={"excluded": why},
            ),
        ]
        if self.ratios:
            eo_ratio = ci.combine_min([tpr.ratio(every, family=2), fpr.ratio(every, family=2)])
            ratio_point = equalized_odds_fn("ratio", "worst_case", "between_groups", np.nan)(sub.counts)
            out.append(
                self._result(
                    "equalized_odds_ratio",
                    attr,
                    self._ci(ctx, ratio_point, eo_ratio),
                    label="Equalized odds ratio (worst of TPR, FPR ratios)",
                    higher_is_better=True,
                    notes=["agg='worst_case'", RATIO, *notes[1:]],
                    details={"excluded": why, "tested_by": "equalized_odds_difference"},
                )
            )
        return out

    def _signed(
        self, ctx: MetricContext, attr: _Attr, boot: CountsBootstrap, rates: list[str]
    ) -> list[MetricResult]:
        """AIF360-convention signed differences against a reference group."""
        names = attr.groups.names
        wanted = (self.reference_groups or {}).get(attr.groups.attribute)
        if wanted is not None and wanted not in names:
            return [
                not_applicable(
                    "equal_opportunity_difference_signed",
                    self.name,
                    attr.groups.attribute,
                    f"reference group {wanted!r} not among {names}",
                )
            ]
        ref = names.index(wanted) if wanted is not None else int(np.argmax(attr.n))
        conv = (
            f"AIF360 convention: value(all groups other than {names[ref]!r}, pooled) − "
            f"value({names[ref]!r}); signed"
        )
        specs = []
        if "true_positive_rate" in rates:
            specs.append(
                (
                    "equal_opportunity_difference_signed",
                    "Equal opportunity difference (signed)",
                    lambda c: cm.signed_difference(c, "true_positive_rate", ref),
                    "true_positive_rate",
                )
            )
        if {"true_positive_rate", "false_positive_rate"} <= set(rates):
            specs.append(
                (
                    "average_odds_difference_signed",
                    "Average odds difference (signed)",
                    lambda c: (
                        (
                            cm.signed_difference(c, "true_positive_rate", ref)
                            + cm.signed_difference(c, "false_positive_rate", ref)
                        )
                        / 2
                    ),
                    "true_positive_rate",
                )
            )
        if "selection_rate" in rates:
            specs.append(
                (
                    "statistical_parity_difference_signed",
                    "Statistical parity difference (signed)",
                    lambda c: cm.signed_difference(c, "selection_rate", ref),
                    "selection_rate",
                )
            )
            specs.append(
                (
                    "disparate_impact_ratio",
                    "Disparate impact ratio",
                    lambda c: cm.signed_ratio(c, "selection_rate", ref),
                    "selection_rate",
                )
            )
        out = []
        for metric, label, fn, rate_name in specs:
            den = cm.denominators(boot.counts, rate_name)
            small, why = self._too_small(ctx, attr, {ci.rate_events(rate_name): den})
            if small[ref]:
                ref_why = [w for w in why if w["group"] == str(names[ref])]
                out.append(
                    self._result(
                        metric,
                        attr,
                        None,
                        label=label,
                        higher_is_better=None,
                        status="too_small",
                        notes=[conv, f"reference group {names[ref]!r} too small to judge ({ref_why[0]['reason']})"],
                        details={"excluded": ref_why},
                    )
                )
                continue
            out.append(
                self._result(
                    metric,
                    attr,
                    boot.estimate(fn),
                    label=label,
                    higher_is_better=None,
                    notes=[conv, attr.threshold_note],
                    details={"reference_group": names[ref]},
                )
            )
        return out

    # ------------------------------------------------------------------ score metrics
    def _scores(
        self, ctx: MetricContext, attr: _Attr, y: np.ndarray, score: np.ndarray, metrics: list[str]
    ) -> list[MetricResult]:
        st = ctx.stats
        sb = bootstrap_score_metrics(
            y,
            score,
            attr.groups,
            metrics=metrics,
            patient_ids=ctx.patient_ids,
            n_boot=st.n_boot,
            ci_level=st.ci_level,
            seed=make_rng(st.seed, attr.groups.attribute, "scores"),
            stratified=self.stratified,
            n_bins=self.ece_bins,
            bin_strategy=self.ece_strategy,
        )
        n_neg = attr.n - attr.n_pos
        out = []
        for m in metrics:
            label, hib = SCORE_METRICS[m]
            needs_both = m in ("roc_auc", "average_precision")
            events = {"positives": attr.n_pos, "negatives": n_neg} if needs_both else {"rows": attr.n}
            small, why = self._too_small(ctx, attr, events)
            est, per, overall = self._score_intervals(ctx, attr, y, score, sb, m)
            note = (
                f"{self.ece_bins} {self.ece_strategy} bins over the pooled scores, shared by groups"
                if m == "expected_calibration_error"
                else "threshold-free"
            )
            gv = group_values(
                attr.groups, attr.n, attr.n_pos, per.value, per.ci_low, per.ci_high, small
            )
            out.append(
                self._result(
                    m,
                    attr,
                    overall,
                    label=label,
                    higher_is_better=hib,
                    notes=[note],
                    per_group=gv,
                    details={"excluded": why},
                )
            )
            out += self._score_gaps(ctx, attr, sb, y, score, m, (small, why), label, hib, note, est)
        return out

    def _score_intervals(
        self, ctx: MetricContext, attr: _Attr, y: np.ndarray, score: np.ndarray, sb: ScoreBootstrap, m: str
    ) -> tuple[ci.GroupEstimates, Interval, Interval]:
        """Per-group estimates for gaps, and the per-group and overall intervals of score metric ``m``.

        AUC: the score-type interval of :func:`fairaudit.stats.intervals.auc_estimates` (its
        coverage is measured); the other score metrics keep bootstrap percentile intervals and
        build gaps from normal limits with the bootstrap SD.
        """
        if m != "roc_auc":
            per, overall = sb.by_group(m), sb.overall_interval(m)
            return ci.wald_estimates(sb.point[m], sb.samples[m], (0.0, 1.0)), per, overall
        kept = attr.groups.kept
        pids = None if ctx.patient_ids is None else np.asarray(ctx.patient_ids)[kept]
        yk, sk, codes = y[kept], score[kept], attr.groups.codes[kept]
        est = ci.auc_estimates(yk, sk, codes, attr.groups.n_groups, pids, value=sb.point[m])
        pooled = ci.auc_estimates(yk, sk, np.zeros(len(yk), int), 1, pids, value=np.array([sb.overall[m]]))
        level = ctx.stats.ci_level
        lo, hi = pooled.limits(level)
        return est, self._ci(ctx, sb.point[m], est.limits(level)), self._ci(ctx, sb.overall[m], (lo[0], hi[0]))

    def _score_gaps(
        self,
        ctx: MetricContext,
        attr: _Attr,
        sb: ScoreBootstrap,
        y: np.ndarray,
        score: np.ndarray,
        m: str,
        too_small: tuple[np.ndarray, list[dict[str, str]]],
        label: str,
        hib: bool,
        note: str,
        est: ci.GroupEstimates,
    ) -> list[MetricResult]:
        small, why = too_small
        judge = ~small
        if judge.sum() < 2:
            return [self._too_small_gap(_diff_name(m), attr, f"{label}: gap", why, False)]
        idx = np.flatnonzero(judge)
        excluded = self._excluded_note(attr, why)
        alpha = 1.0 - ctx.stats.ci_level
        p = None
        tested = (
            self.permutation_score_metrics
            if self.permutation_score_metrics is not None
            else ["roc_auc"]
        )
        if self.permutation_tests and ctx.stats.n_permutations > 0 and m in tested:
            p = permutation_test_score_gap(
                y,
                score,
                restrict(attr.groups, judge),
                metric=m,
                patient_ids=ctx.patient_ids,
                n_permutations=ctx.stats.n_permutations,
                edges=sb.edges,
                seed=make_rng(ctx.stats.seed, attr.groups.attribute, "perm", m),
            ).p_value
        out = [
            self._result(
                _diff_name(m),
                attr,
                self._ci(ctx, cm.difference(sb.point[m][idx]), ci.gap_bounds(est.take(idx), alpha)),
                label=f"{label}: max − min gap",
                higher_is_better=False,
                p_value=p,
                notes=[UNSIGNED, note, *excluded],
                details={"excluded": why},
            )
        ]
        worst = self._ci(ctx, cm.worst(sb.point[m][idx], hib), ci.worst_bounds(est.take(idx), alpha, hib))
        values = sb.point[m][idx]
        worst_group = None
        if np.isfinite(values).any():
            worst_group = attr.groups.names[
                idx[int(np.nanargmin(values) if hib else np.nanargmax(values))]
            ]
        out.append(
            self._result(
                _worst_name(m),
                attr,
                worst,
                label=f"{label}: worst group",
                higher_is_better=hib,
                notes=[note, *excluded],
                details={"group": worst_group, "excluded": why},
            )
        )
        return out

    def _sens_at_spec(
        self, ctx: MetricContext, attr: _Attr, y: np.ndarray, score: np.ndarray
    ) -> list[MetricResult]:
        if ctx.val_y_true is None or ctx.val_y_score is None:
            return [
                not_applicable(
                    SENS_AT_SPEC,
                    self.name,
                    attr.groups.attribute,
                    "needs validation scores to fix the operating point (never the test set)",
                )
            ]
        t = threshold_at_specificity(ctx.val_y_true, ctx.val_y_score, self.target_specificity)
        y_pred = (score >= t).astype(np.int64)
        st = ctx.stats
        boot, _ = bootstrap_confusion_counts(
            y,
            y_pred,
            attr.groups,
            patient_ids=ctx.patient_ids,
            n_boot=st.n_boot,
            ci_level=st.ci_level,
            seed=make_rng(st.seed, attr.groups.attribute, "sens_at_spec"),
            stratified=self.stratified,
        )
        note = (
            f"sensitivity at the threshold {t:.6g} that gives specificity >= "
            f"{self.target_specificity:g} on validation data"
        )
        label = f"Sensitivity at {self.target_specificity:g} specificity"
        out = self._rate(
            ctx, attr, boot, y, y_pred, "true_positive_rate", SENS_AT_SPEC, note, label
        )
        spec = cm.rate(boot.counts, "true_negative_rate")
        out[0].details.update(
            {
                "threshold": t,
                "target_specificity": self.target_specificity,
                "test_specificity_by_group": num_list(spec),
                "test_specificity": num(cm.rate(boot.counts.sum(0), "true_negative_rate")),
            }
        )
        return out

    # ------------------------------------------------------------------ figures' data
    def _curves(self, attr: _Attr, y: np.ndarray, score: np.ndarray) -> list[MetricResult]:
        from fairaudit.stats.ranking import bin_edges, sort_scores, weighted_auc

        codes = attr.groups.codes
        edges = bin_edges(score[attr.groups.kept], self.ece_bins, self.ece_strategy)
        roc: dict[str, dict[str, object]] = {}
        cal: dict[str, dict[str, object]] = {}
        for gi, name in enumerate(attr.groups.names):
            rows = codes == gi
            if not rows.any():
                continue
            pts = roc_points(y[rows], score[rows])
            if pts["fpr"]:
                auc = num(weighted_auc(sort_scores(y[rows], score[rows]))[0])
                roc[name] = {**pts, "auc": auc}
            cal[name] = calibration_points(y[rows], score[rows], edges)
        return [
            MetricResult(
                **self._declared("roc_curve"),  # type: ignore[arg-type]
                metric="roc_curve",
                plugin=self.name,
                attribute=attr.groups.attribute,
                label="ROC curve per group",
                details={"curves": roc},
            ),
            MetricResult(
                **self._declared("calibration_curve"),  # type: ignore[arg-type]
                metric="calibration_curve",
                plugin=self.name,
                attribute=attr.groups.attribute,
                label="Calibration (reliability) curve per group",
                notes=[f"{self.ece_bins} {self.ece_strategy} bins over the pooled scores"],
                details={"curves": cal, "bin_edges": num_list(edges)},
            ),
        ]
