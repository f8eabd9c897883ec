"""``counterfactual_sensitivity``: how often an arm's decisions change when one factor of the
image is flipped and nothing else (oracle counterfactuals).

For a factor that should not matter (a support device, sex, the view) this is the classifier's
reliance on it, per group: 0 = the decision never depends on the factor.  It is the direct
measure of a shortcut, and of counterfactual (un)fairness for a sensitive attribute, and the
headline one wherever the dataset has an oracle.  For the disease factor itself a high rate is
what a useful classifier shows.  ``scls`` is the same quantity for the artefact measured on a
generator's edits (decision flips per confirmed edit); on oracle edits the two are equal.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fairaudit.base import BaseMetric, MetricContext, MetricOutput
from fairaudit.builtin.metrics._common import attribute_sets, not_applicable, num
from fairaudit.builtin.metrics.counterfactual_quality import MeanTable, group_means, group_values
from fairaudit.results import MetricResult
from fairaudit.stats.bootstrap import make_rng
from fairaudit.stats.confusion import check_scores
from fairaudit.stats.groups import encode_groups, patient_codes

NOTE = ("share of test images whose decision changes when only this factor is flipped (oracle "
        "counterfactual); for a factor that should not matter, 0 is ideal")


class CounterfactualSensitivity(BaseMetric):
    """Decision flip rate and mean |score change| under oracle counterfactuals, per factor and group.

    One result ``cf_sensitivity_<factor>`` per factor and attribute (a threshold such as
    ``cf_sensitivity_device: {max: 0.05}`` can be declared in the spec).

    Parameters
    ----------
    factors:
        Oracle factors to flip (default: every ``oracle:`` set of the dataset except
        ``disease``, whose flips a classifier *should* follow).
    """

    name: ClassVar[str] = "counterfactual_sensitivity"
    description: ClassVar[str] = (
        "Counterfactual sensitivity: how often the decision changes when only one factor of the "
        "image (device, sex, view) is flipped, per group"
    )
    requires: ClassVar[frozenset[str]] = frozenset({"counterfactuals"})

    def __init__(self, factors: list[str] | None = None):
        self.factors = factors

    def outputs(self) -> list[MetricOutput]:
        names = [f"cf_sensitivity_{f}" for f in self.factors] if self.factors is not None else ["cf_sensitivity_*"]
        return [MetricOutput(n, "value", headline=True) for n in names]

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"factors": ["disease"]}]

    def _oracle_sets(self, ctx: MetricContext, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        out = {}
        for factor, cf in ctx.counterfactuals.oracle.items():
            if np.shape(cf) != shape:
                continue
            wanted = factor in self.factors if self.factors is not None else factor != "disease"
            if wanted:
                out[factor] = np.asarray(cf)
        return out

    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        if ctx.images is None or ctx.predict_fn is None:
            return [not_applicable("cf_sensitivity", self.name, None, "needs test images and a classifier")]
        images = np.asarray(ctx.images)
        sets = self._oracle_sets(ctx, images.shape)
        if not sets:
            return [not_applicable("cf_sensitivity", self.name, None,
                                   "the dataset has no oracle counterfactuals for the requested factors")]
        n = len(images)
        score0 = check_scores(ctx.predict_fn(images), n)
        patients = patient_codes(ctx.patient_ids, n)
        out: list[MetricResult] = []
        for factor, cf in sets.items():
            score1 = check_scores(ctx.predict_fn(cf), n)
            flip = ((score0 >= ctx.threshold) != (score1 >= ctx.threshold)).astype(np.float64)
            values = np.stack([flip, np.abs(score1 - score0)], axis=1)
            for cols in attribute_sets(ctx) or [None]:
                groups = (encode_groups(ctx.sensitive, cols) if cols is not None
                          else encode_groups(np.zeros(n, dtype=np.int64), "all"))
                rng = make_rng(ctx.stats.seed, self.name, factor, groups.attribute)
                table = group_means(values, groups, patients, ctx.stats, rng)
                out.append(self._result(ctx, factor, table, groups.attribute if cols is not None else None))
        return out

    def _result(self, ctx: MetricContext, factor: str, table: MeanTable, attribute: str | None) -> MetricResult:
        n_pairs = int(table.count[:, 0].sum())
        ok = n_pairs >= ctx.stats.min_group_size
        return MetricResult(
            metric=f"cf_sensitivity_{factor}",
            headline=True,
            plugin=self.name,
            attribute=attribute,
            label=f"Decision flip rate when {factor!r} is flipped",
            value=num(table.overall[0]) if ok else None,
            ci_low=num(table.overall_low[0]) if ok else None,
            ci_high=num(table.overall_high[0]) if ok else None,
            higher_is_better=(factor == "disease") or False,
            status="ok" if ok else "too_small",
            per_group=group_values(table, 0, attribute, ctx.stats.min_group_size, is_rate=True),
            notes=[NOTE, f"decision: score >= {ctx.threshold:g}"],
            details={"factor": factor, "n_pairs": n_pairs,
                     "mean_abs_score_change": {"value": num(table.overall[1]),
                                               "by_group": {g: num(table.point[i, 1])
                                                            for i, g in enumerate(table.names)}}},
        )
