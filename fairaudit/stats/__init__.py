"""Statistics engine of fairaudit (pure numpy/scipy): group metrics, bootstrap CIs, permutation
tests, multiple-testing control and threshold verdicts.

The runner calls :func:`judge_threshold` and :func:`benjamini_hochberg`; metric plugins build on
the rest.  Everything is vectorised over bootstrap resamples: confusion-matrix metrics are
resampled from per-cell counts (stratified multinomial over patients), score metrics from one
sort plus weighted cumulative sums.
"""

from fairaudit.stats.bootstrap import (
    CountsBootstrap,
    GroupMetricTable,
    Interval,
    ScoreBootstrap,
    bootstrap_auc,
    bootstrap_confusion_counts,
    bootstrap_group_metrics,
    bootstrap_score_metrics,
    make_rng,
    percentile_ci,
)
from fairaudit.stats.confusion import (
    RATES,
    difference,
    group_confusion_counts,
    rate,
    ratio,
    signed_difference,
    signed_ratio,
    worst,
)
from fairaudit.stats.groups import INTERSECTION_SEP, MISSING_LABEL, Groups, encode_groups
from fairaudit.stats.multiplicity import benjamini_hochberg
from fairaudit.stats.operating_point import threshold_at_specificity
from fairaudit.stats.paired import paired_bootstrap
from fairaudit.stats.permutation import (
    PermutationResult,
    permutation_test_counts,
    permutation_test_gap,
    permutation_test_score_gap,
)
from fairaudit.stats.ranking import (
    SCORE_METRICS,
    bin_edges,
    sort_scores,
    weighted_auc,
    weighted_average_precision,
    weighted_brier,
    weighted_ece,
)
from fairaudit.stats.verdict import judge_threshold

__all__ = [
    "INTERSECTION_SEP",
    "MISSING_LABEL",
    "RATES",
    "SCORE_METRICS",
    "CountsBootstrap",
    "GroupMetricTable",
    "Groups",
    "Interval",
    "PermutationResult",
    "ScoreBootstrap",
    "benjamini_hochberg",
    "bin_edges",
    "bootstrap_auc",
    "bootstrap_confusion_counts",
    "bootstrap_group_metrics",
    "bootstrap_score_metrics",
    "difference",
    "encode_groups",
    "group_confusion_counts",
    "judge_threshold",
    "make_rng",
    "paired_bootstrap",
    "percentile_ci",
    "permutation_test_counts",
    "permutation_test_gap",
    "permutation_test_score_gap",
    "rate",
    "ratio",
    "signed_difference",
    "signed_ratio",
    "sort_scores",
    "threshold_at_specificity",
    "weighted_auc",
    "weighted_average_precision",
    "weighted_brier",
    "weighted_ece",
    "worst",
]
