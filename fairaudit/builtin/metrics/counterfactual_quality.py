"""``counterfactual_quality``: judge a generator's counterfactual images against oracle counterfactuals.

Every generator counterfactual set (a key of ``MetricContext.counterfactuals`` without the
``"oracle:"`` prefix) is paired row by row with the test images and, when the dataset ships one,
with the oracle counterfactual of the same factor (``"oracle:<factor>"``).  Six results per set
and attribute, each overall and per group with patient-level bootstrap CIs:

* ``cf_classifier_flip_rate``: pairs whose decision (``score >= threshold``) changes; the target
  is the oracle's rate (``details["oracle_flip_rate"]``), not 0 or 1.
* ``cf_oracle_decision_kappa``: Cohen's kappa between the generator's and the oracle's per-pair
  decision flips (does the generator flip the *same* images?), raw agreement in details; equal
  flip rates from different images no longer look perfect.
* ``cf_artefact_flip_rate``: pairs whose artefact-oracle verdict changes.  Its direction is per
  factor: for an artefact edit (device) the artefact should change (higher is better); for any
  other edit (sex, view, disease) it must not (lower is better).
* ``cf_edit_effectiveness``: inside the edited region, how much of the oracle's change the
  generator made, ``1 - sum|gen - oracle| / sum|original - oracle|``: 1 = the oracle's edit,
  0 = nothing changed (a generator returning its input), < 0 = further from the oracle than
  no edit at all.  It judges the edit against the oracle's own: a valid edit drawn elsewhere
  (a device in another place) scores near 0, so read it beside ``cf_artefact_flip_rate``.
* ``cf_identity_l1`` / ``cf_identity_ssim``: identity preservation outside the edited region
  (where the oracle differs from the original, dilated); masked SSIM with local statistics taken
  over unedited pixels only, so the edit itself never leaks into the score.  A generator that
  changes nothing is perfect here by construction: read these beside ``cf_edit_effectiveness``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from fairaudit.base import BaseMetric, MetricContext, MetricOutput, StatsConfig
from fairaudit.builtin.metrics._common import attribute_sets, not_applicable, num
from fairaudit.results import GroupValue, MetricResult
from fairaudit.stats.bootstrap import make_rng, percentile_ci
from fairaudit.stats.confusion import check_scores
from fairaudit.stats.groups import Groups, encode_groups, patient_codes
from fairaudit.stats.resample import make_design, weight_chunks

SSIMWindow = Literal["gaussian", "uniform"]

ORACLE_PREFIX = "oracle:"
#: SSIM constants for data range 1 (Wang et al., IEEE TIP 2004): C1 = (0.01 L)^2, C2 = (0.03 L)^2.
SSIM_K1, SSIM_K2 = 0.01, 0.03
#: Gaussian window of Wang et al. (sigma 1.5), truncated at 3.5 sigma (11 taps, as scikit-image).
GAUSSIAN_SIGMA, GAUSSIAN_TRUNCATE = 1.5, 3.5
#: Side of the uniform window (scikit-image's default, with sample covariances).
UNIFORM_SIZE = 7
#: Images processed at once (bounds memory on large test splits).
CHUNK = 64

#: Per-pair columns, in the order of the bootstrap table.
COLUMNS = ("flip", "oracle_flip", "flip_minus_oracle", "agree", "artefact_flip", "effect", "l1_out", "ssim_out",
           "l1_in")
#: The kappa result is computed from these columns' means, not from a column of its own.
KAPPA = "cf_oracle_decision_kappa"
RESULTS: dict[str, tuple[str, str, bool | None]] = {
    # name: (column, label, higher_is_better; None: per factor / no direction)
    "cf_classifier_flip_rate": ("flip", "Counterfactual decision flip rate", None),
    KAPPA: ("agree", "Decision flips agree with the oracle's (Cohen's kappa)", True),
    "cf_artefact_flip_rate": ("artefact_flip", "Counterfactual artefact flip rate", None),
    "cf_edit_effectiveness": ("effect", "Edit effectiveness inside the edited region", True),
    "cf_identity_l1": ("l1_out", "Identity L1 outside the edited region", False),
    "cf_identity_ssim": ("ssim_out", "Identity SSIM outside the edited region", True),
}
#: An oracle edit that changes the artefact verdict on at least this share of pairs is an
#: artefact edit (its generator's version should change the artefact too).
ARTEFACT_EDIT_SHARE = 0.5
NOTES = {
    "cf_classifier_flip_rate": "the target is the oracle's flip rate (details.oracle_flip_rate), not 0 or 1; "
    "details.difference_to_oracle is generator minus oracle on the same pairs",
    KAPPA: "Cohen's kappa between the generator's and the oracle's per-pair decision flips (1 = the same "
    "images flip, 0 = chance agreement); details.agreement is the raw share of pairs that agree",
    "cf_artefact_flip_rate": "fraction of pairs whose artefact-oracle verdict changes",
    "cf_edit_effectiveness": "inside the edited region: 1 - sum|generated - oracle| / sum|original - oracle|; "
    "1 = the oracle's edit, 0 = nothing changed, < 0 = further from the oracle than no edit",
    "cf_identity_l1": "mean absolute difference between counterfactual and original outside the edited region",
    "cf_identity_ssim": "masked SSIM (local statistics over unedited pixels only) averaged outside the edited region",
}


# ---------------------------------------------------------------- image operations
def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of ``mask`` (``(..., H, W)``) by a ``(2 radius + 1)`` square."""
    out = np.asarray(mask, dtype=bool)
    if radius <= 0:
        return out.copy()
    for axis in (-2, -1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad)
        size = out.shape[axis]
        grown = np.zeros_like(out)
        for shift in range(2 * radius + 1):
            grown |= np.take(padded, np.arange(shift, shift + size), axis=axis)
        out = grown
    return out


def window_taps(window: SSIMWindow) -> np.ndarray:
    """Normalised 1-D taps of the separable SSIM window."""
    if window == "uniform":
        return np.full(UNIFORM_SIZE, 1.0 / UNIFORM_SIZE)
    if window == "gaussian":
        radius = int(GAUSSIAN_TRUNCATE * GAUSSIAN_SIGMA + 0.5)
        x = np.arange(-radius, radius + 1, dtype=np.float64)
        taps = np.exp(-0.5 * (x / GAUSSIAN_SIGMA) ** 2)
        return taps / taps.sum()
    raise ValueError(f"ssim_window must be 'gaussian' or 'uniform', got {window!r}")


def filter2d(a: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable correlation of the last two axes with ``taps``; mirror borders (``d c b a | a b c d``)."""
    r = len(taps) // 2
    h, w = a.shape[-2:]
    lead = [(0, 0)] * (a.ndim - 2)
    p = np.pad(a, [*lead, (r, r), (r, r)], mode="symmetric")
    rows = sum(t * p[..., i : i + h, :] for i, t in enumerate(taps))
    return sum(t * rows[..., :, j : j + w] for j, t in enumerate(taps))  # type: ignore[no-any-return]


def ssim_map(
    x: np.ndarray,
    y: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    window: SSIMWindow = "gaussian",
    data_range: float = 1.0,
) -> np.ndarray:
    """Per-pixel SSIM of ``x`` and ``y`` (``(..., H, W)``), local statistics over ``mask`` pixels only.

    Without a mask this is the SSIM map of Wang et al. (2004) with mirrored borders: the
    ``"gaussian"`` window (sigma 1.5, population covariances) or the 7×7 ``"uniform"`` window
    (sample covariances), as ``skimage.metrics.structural_similarity`` computes it.  With a mask
    (broadcastable to ``x``), every local mean, variance and covariance is a window-weighted
    average over the mask's pixels, so pixels outside it (an edited region) never enter the map.
    Values where no mask pixel falls in the window are NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = np.ones_like(x) if mask is None else np.broadcast_to(np.asarray(mask, dtype=np.float64), x.shape)
    taps = window_taps(window)
    weight = filter2d(m, taps)
    safe = np.where(weight > 1e-12, weight, np.nan)

    def local(a: np.ndarray) -> np.ndarray:
        return filter2d(m * a, taps) / safe

    mx, my = local(x), local(y)
    vx, vy, vxy = local(x * x) - mx * mx, local(y * y) - my * my, local(x * y) - mx * my
    if window == "uniform":
        n_eff = weight * len(taps) ** 2
        norm = np.where(n_eff > 1.0 + 1e-9, n_eff / np.maximum(n_eff - 1.0, 1e-12), 1.0)
        vx, vy, vxy = vx * norm, vy * norm, vxy * norm
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    num_ = (2 * mx * my + c1) * (2 * vxy + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    return num_ / den  # type: ignore[no-any-return]


def edit_region(original: np.ndarray, oracle: np.ndarray | None, tol: float, radius: int) -> np.ndarray:
    """Edited pixels ``(n, 1, H, W)``: ``|oracle - original| > tol`` in any channel, dilated by ``radius``.

    Without an oracle nothing is marked (the whole image counts as "outside").
    """
    n, _, h, w = original.shape
    if oracle is None:
        return np.zeros((n, 1, h, w), dtype=bool)
    diff = np.abs(np.asarray(oracle, np.float64) - np.asarray(original, np.float64)).max(axis=1, keepdims=True)
    return dilate(diff > tol, radius)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of ``values`` ``(n, C, H, W)`` over ``mask`` ``(n, 1, H, W)`` per image (NaN when empty)."""
    m = np.broadcast_to(mask, values.shape)
    total = np.where(m, values, 0.0).reshape(len(values), -1).sum(1)
    count = m.reshape(len(values), -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def edit_effectiveness(original: np.ndarray, generated: np.ndarray, oracle: np.ndarray,
                       region: np.ndarray) -> np.ndarray:
    """``1 - sum_R |generated - oracle| / sum_R |original - oracle|`` per pair over the edited
    region ``R`` ``(n, 1, H, W)``: 1 = the oracle's edit, 0 = unchanged; NaN when the oracle
    changes nothing."""
    m = np.broadcast_to(region, original.shape).reshape(len(original), -1)
    miss = np.where(m, np.abs(generated - oracle).reshape(len(original), -1), 0.0).sum(1)
    size = np.where(m, np.abs(original - oracle).reshape(len(original), -1), 0.0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size > 0, 1.0 - miss / np.where(size > 0, size, 1.0), np.nan)


def cohen_kappa(agree: np.ndarray, rate_a: np.ndarray, rate_b: np.ndarray) -> np.ndarray:
    """Cohen's kappa of two binary raters from their agreement and positive rates (NaN when the
    chance agreement is 1, i.e. both raters constant and equal)."""
    chance = rate_a * rate_b + (1.0 - rate_a) * (1.0 - rate_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(chance < 1.0 - 1e-12, (agree - chance) / (1.0 - chance), np.nan)


@dataclass
class PairQuality:
    """Per-pair identity and edit measures (NaN where undefined)."""

    l1_out: np.ndarray
    ssim_out: np.ndarray
    l1_in: np.ndarray
    region_fraction: np.ndarray
    effect: np.ndarray


def pair_quality(
    original: np.ndarray,
    generated: np.ndarray,
    oracle: np.ndarray | None,
    *,
    tol: float,
    radius: int,
    window: SSIMWindow,
) -> PairQuality:
    """Identity L1/SSIM outside the edited region, oracle agreement (L1) and edit effectiveness
    inside it, per pair."""
    parts: list[tuple[np.ndarray, ...]] = [(np.zeros(0),) * 5]
    for lo in range(0, len(original), CHUNK):
        sl = slice(lo, lo + CHUNK)
        x = np.asarray(original[sl], np.float64)
        g = np.asarray(generated[sl], np.float64)
        o = None if oracle is None else np.asarray(oracle[sl], np.float64)
        region = edit_region(x, o, tol, radius)
        outside = ~region
        ssim = ssim_map(x, g, outside, window=window)
        l1_in = np.full(len(x), np.nan) if o is None else _masked_mean(np.abs(g - o), region)
        frac = region.reshape(len(x), -1).mean(1)
        effect = np.full(len(x), np.nan) if o is None else edit_effectiveness(x, g, o, region)
        parts.append((_masked_mean(np.abs(g - x), outside), _masked_mean(ssim, outside), l1_in, frac, effect))
    return PairQuality(*(np.concatenate(col) for col in zip(*parts, strict=True)))


# ---------------------------------------------------------------- bootstrap of group means
@dataclass
class MeanTable:
    """Means of per-pair columns per group and overall, with bootstrap percentile CIs."""

    names: list[str]
    count: np.ndarray  # (G, K) non-NaN pairs
    total: np.ndarray  # (G, K) sums
    point: np.ndarray  # (G, K)
    low: np.ndarray
    high: np.ndarray
    overall: np.ndarray  # (K,)
    overall_low: np.ndarray
    overall_high: np.ndarray
    reps: np.ndarray | None = None  # (B, G, K) bootstrap means
    overall_reps: np.ndarray | None = None  # (B, K)


def _ratio(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)


def group_means(
    values: np.ndarray, groups: Groups, patients: np.ndarray, stats: StatsConfig, rng: np.random.Generator
) -> MeanTable:
    """Group means of ``values`` ``(n, K)`` (NaN = not defined for that pair), resampling patients.

    Patients are resampled within their group (:func:`~fairaudit.stats.resample.weight_chunks`);
    each resample's mean is a ratio of weighted sums, so every column shares the same resamples.
    """
    keep = groups.kept
    codes = groups.codes[keep]
    design = make_design(patients[keep], codes, stratified=True)
    v = np.asarray(values, dtype=np.float64)[keep]
    valid = np.isfinite(v)
    n_groups, n_cols = groups.n_groups, v.shape[1]
    sums = np.zeros((design.n_patients, n_groups, n_cols))
    counts = np.zeros_like(sums)
    np.add.at(sums, (design.row_patient, codes), np.where(valid, v, 0.0))
    np.add.at(counts, (design.row_patient, codes), valid.astype(np.float64))
    group_total, group_count = sums.sum(0), counts.sum(0)
    reps, overall_reps = [], []
    for w in weight_chunks(design, stats.n_boot, rng, n_rows=len(codes)):
        wf = w.astype(np.float64)
        s, c = np.einsum("bp,pgk->bgk", wf, sums), np.einsum("bp,pgk->bgk", wf, counts)
        reps.append(_ratio(s, c))
        overall_reps.append(_ratio(s.sum(1), c.sum(1)))
    rep = np.concatenate(reps) if reps else np.zeros((0, n_groups, n_cols))
    orep = np.concatenate(overall_reps) if overall_reps else np.zeros((0, n_cols))
    low, high = percentile_ci(rep, stats.ci_level)
    olow, ohigh = percentile_ci(orep, stats.ci_level)
    return MeanTable(
        groups.names,
        group_count,
        group_total,
        _ratio(group_total, group_count),
        low,
        high,
        _ratio(group_total.sum(0), group_count.sum(0)),
        olow,
        ohigh,
        rep,
        orep,
    )


# ---------------------------------------------------------------- the metric
@dataclass
class _Originals:
    """Decision and artefact verdict on the original images (``None`` without classifier / oracle)."""

    decision: np.ndarray | None
    artefact: np.ndarray | None


@dataclass
class _Pairs:
    """One generator set with its per-pair columns."""

    key: str
    oracle_key: str | None
    values: np.ndarray  # (n, len(COLUMNS))
    region_fraction: float | None
    n_pairs: int
    #: Whether the edit should change the artefact (True), must not (False), or unknown (None).
    artefact_edit: bool | None = None
    artefact_edit_source: str = "unknown"


class CounterfactualQuality(BaseMetric):
    """Quality of a generator's counterfactuals, judged against the dataset's oracle counterfactuals.

    For every generator set in ``counterfactuals`` (keys without the ``"oracle:"`` prefix; the
    matching oracle is ``"oracle:<factor>"``), per group of every attribute, with patient-level
    bootstrap CIs:

    * ``cf_classifier_flip_rate``: pairs whose decision (``predict_fn`` at the threshold) flips;
      the oracle's rate on the same images and the difference are in ``details``;
    * ``cf_oracle_decision_kappa``: Cohen's kappa between the generator's and the oracle's
      per-pair decision flips (pairwise agreement, not rates); raw agreement in ``details``;
    * ``cf_artefact_flip_rate``: pairs whose ``artefact_oracle`` verdict flips; higher is better
      for an artefact edit, lower for any other (``details["artefact_edit"]``);
    * ``cf_edit_effectiveness``: share of the oracle's change made inside the edited region
      (1 = the oracle's edit, 0 = no change);
    * ``cf_identity_l1``, ``cf_identity_ssim``: identity outside the edited region (pixels where
      the oracle differs from the original by more than ``region_tol``, dilated by ``dilate``;
      the whole image when there is no oracle); the generator's L1 to the oracle *inside* the
      region is in ``details["oracle_agreement_in_region_l1"]``.

    Per-group SCLS (does the decision follow the artefact?) is reported by the ``scls`` metric.

    Parameters
    ----------
    factors:
        Generator sets to judge (default: every non-oracle set).
    region_tol:
        Pixels where ``|oracle - original|`` exceeds this (data range 1) form the edited region.
    dilate:
        Grow the edited region by this many pixels (square neighbourhood).
    ssim_window:
        ``"gaussian"`` (sigma 1.5, 11 taps; Wang et al. 2004) or ``"uniform"`` (7×7, sample
        covariances; scikit-image's default).
    artefact_factors:
        Factors whose edit should change the artefact (e.g. ``[device]``).  Default: inferred
        from the oracle (its edit changes the artefact verdict on at least half the pairs); a
        factor without an oracle then has no direction.
    """

    name: ClassVar[str] = "counterfactual_quality"
    description: ClassVar[str] = (
        "Counterfactual generator quality: decision and artefact flip rates and identity "
        "preservation outside the edited region, against oracle counterfactuals"
    )
    requires: ClassVar[frozenset[str]] = frozenset({"counterfactuals"})

    def __init__(
        self,
        factors: list[str] | None = None,
        region_tol: float = 0.01,
        dilate: int = 2,
        ssim_window: SSIMWindow = "gaussian",
        artefact_factors: list[str] | None = None,
    ):
        self.factors = factors
        self.region_tol = region_tol
        self.dilate = dilate
        self.ssim_window = ssim_window
        self.artefact_factors = artefact_factors

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"factors": ["disease"], "dilate": 0, "ssim_window": "uniform", "artefact_factors": ["device"]}]

    # ------------------------------------------------------------------ selection
    def _generator_sets(self, ctx: MetricContext, shape: tuple[int, ...], notes: list[str]) -> dict[str, np.ndarray]:
        wanted = None if self.factors is None else set(self.factors)
        out = {}
        for key, cf in ctx.counterfactuals.generated.items():
            if wanted is not None and key not in wanted and key.split(":")[-1] not in wanted:
                continue
            arr = np.asarray(cf)
            if arr.shape != shape:
                notes.append(f"counterfactual set {key!r} has shape {arr.shape}, originals {shape}; skipped")
                continue
            out[key] = arr
        return out

    @staticmethod
    def _oracle(ctx: MetricContext, key: str, shape: tuple[int, ...]) -> tuple[str | None, np.ndarray | None]:
        okey = ORACLE_PREFIX + key.split(":")[-1]
        arr = ctx.counterfactuals.oracle.get(key.split(":")[-1])
        if arr is None or np.shape(arr) != shape:
            return None, None
        return okey, np.asarray(arr)

    # ------------------------------------------------------------------ per-pair columns
    def _pairs(self, ctx: MetricContext, images: np.ndarray, base: _Originals, key: str, gen: np.ndarray) -> _Pairs:
        n = len(images)
        okey, oracle = self._oracle(ctx, key, images.shape)
        cols = {c: np.full(n, np.nan) for c in COLUMNS}
        if base.decision is not None:
            cols["flip"] = (base.decision != self._decisions(ctx, gen)).astype(np.float64)
            if oracle is not None:
                cols["oracle_flip"] = (base.decision != self._decisions(ctx, oracle)).astype(np.float64)
                cols["flip_minus_oracle"] = cols["flip"] - cols["oracle_flip"]
                cols["agree"] = (cols["flip"] == cols["oracle_flip"]).astype(np.float64)
        if base.artefact is not None:
            cols["artefact_flip"] = (base.artefact != self._artefact(ctx, gen)).astype(np.float64)
        q = pair_quality(images, gen, oracle, tol=self.region_tol, radius=self.dilate, window=self.ssim_window)
        cols["l1_out"], cols["ssim_out"], cols["l1_in"], cols["effect"] = q.l1_out, q.ssim_out, q.l1_in, q.effect
        frac = num(q.region_fraction.mean()) if oracle is not None and n else None
        edit, source = self._artefact_edit(ctx, key, base, oracle)
        return _Pairs(key, okey, np.stack([cols[c] for c in COLUMNS], axis=1), frac, n, edit, source)

    def _artefact_edit(
        self, ctx: MetricContext, key: str, base: _Originals, oracle: np.ndarray | None
    ) -> tuple[bool | None, str]:
        """Whether editing ``key`` should change the artefact, and how that was decided."""
        factor = key.split(":")[-1]
        if self.artefact_factors is not None:
            return factor in self.artefact_factors, "parameter artefact_factors"
        if oracle is None or base.artefact is None or not len(oracle):
            return None, "unknown (no oracle counterfactual to infer it from)"
        share = float(np.mean(base.artefact != self._artefact(ctx, oracle)))
        return share >= ARTEFACT_EDIT_SHARE, f"oracle:{factor} changes the artefact on {share:.0%} of pairs"

    def _originals(self, ctx: MetricContext, images: np.ndarray) -> _Originals:
        decision = None if ctx.predict_fn is None else self._decisions(ctx, images)
        artefact = None if ctx.artefact_oracle is None else self._artefact(ctx, images)
        return _Originals(decision, artefact)

    @staticmethod
    def _decisions(ctx: MetricContext, images: np.ndarray) -> np.ndarray:
        return check_scores(ctx.predict_fn(images), len(images)) >= ctx.threshold

    @staticmethod
    def _artefact(ctx: MetricContext, images: np.ndarray) -> np.ndarray:
        return np.asarray(ctx.artefact_oracle(images)).reshape(-1).astype(bool)

    # ------------------------------------------------------------------ compute
    def outputs(self) -> list[MetricOutput]:
        return [MetricOutput(name, "value", higher_is_better=hib) for name, (_, _, hib) in RESULTS.items()]

    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        self._check_params()
        if ctx.images is None:
            return self._all_not_applicable("needs the test images (ctx.images)")
        images = np.asarray(ctx.images)
        notes: list[str] = []
        sets = self._generator_sets(ctx, images.shape, notes)
        if not sets and not notes:
            return []  # an arm without generated counterfactuals (e.g. the baseline): nothing to judge
        if not sets:
            why = "no generator counterfactual set pairs with the test images (oracle sets are references only)"
            return self._all_not_applicable("; ".join([why, *notes]))
        patients = patient_codes(ctx.patient_ids, len(images))
        base = self._originals(ctx, images)
        out: list[MetricResult] = []
        for key, gen in sets.items():
            pairs = self._pairs(ctx, images, base, key, gen)
            for cols in attribute_sets(ctx) or [None]:
                groups = self._groups(ctx, cols, len(images))
                rng = make_rng(ctx.stats.seed, self.name, key, groups.attribute)
                table = group_means(pairs.values, groups, patients, ctx.stats, rng)
                attribute = groups.attribute if cols is not None else None
                out.extend(self._results(ctx, pairs, table, attribute, notes))
        return out

    def _check_params(self) -> None:
        if self.region_tol < 0:
            raise ValueError(f"region_tol must be >= 0, got {self.region_tol}")
        if self.dilate < 0:
            raise ValueError(f"dilate must be >= 0, got {self.dilate}")
        window_taps(self.ssim_window)

    @staticmethod
    def _groups(ctx: MetricContext, cols: list[str] | None, n: int) -> Groups:
        if cols is None:
            return encode_groups(np.zeros(n, dtype=np.int64), "all")
        return encode_groups(ctx.sensitive, cols)

    def _all_not_applicable(self, why: str) -> list[MetricResult]:
        return [not_applicable(name, self.name, None, why) for name in RESULTS]

    # ------------------------------------------------------------------ results
    def _results(
        self, ctx: MetricContext, pairs: _Pairs, table: MeanTable, attribute: str | None, notes: list[str]
    ) -> Iterator[MetricResult]:
        kappa = kappa_table(table, ctx.stats.ci_level)
        for name, (column, label, hib) in RESULTS.items():
            k = COLUMNS.index(column)
            missing = self._missing_reason(ctx, name)
            if name == "cf_artefact_flip_rate":
                hib = pairs.artefact_edit
            yield self._result(ctx, name, k, f"{label} ({pairs.key!r})", hib, kappa if name == KAPPA else table,
                               attribute, pairs, [*notes, *self._notes(ctx, name, pairs)], missing, table)

    @staticmethod
    def _missing_reason(ctx: MetricContext, name: str) -> str | None:
        if name == "cf_classifier_flip_rate" and ctx.predict_fn is None:
            return "needs a classifier (predict_fn)"
        if name == "cf_artefact_flip_rate" and ctx.artefact_oracle is None:
            return "needs an artefact oracle (the dataset has none)"
        if name == KAPPA and ctx.predict_fn is None:
            return "needs a classifier (predict_fn)"
        return None

    def _notes(self, ctx: MetricContext, name: str, pairs: _Pairs) -> list[str]:
        notes = [NOTES[name]]
        if name == "cf_artefact_flip_rate":
            notes.append({True: "an artefact edit: the artefact should change (higher is better)",
                          False: "not an artefact edit: the artefact must not change (lower is better)",
                          None: "whether this edit should change the artefact is unknown (set artefact_factors)"}
                         [pairs.artefact_edit] + f"; {pairs.artefact_edit_source}")
        if name in (KAPPA, "cf_edit_effectiveness") and pairs.oracle_key is None:
            notes.append(f"no oracle counterfactual for {pairs.key!r}: nothing to compare with")
        if name == "cf_classifier_flip_rate":
            notes.append(f"decision: score >= {ctx.threshold:g}")
            if pairs.oracle_key is None:
                notes.append(f"no oracle counterfactual for {pairs.key!r}: no reference flip rate")
        if name in ("cf_identity_l1", "cf_identity_ssim"):
            if pairs.oracle_key is None:
                notes.append(f"no oracle counterfactual for {pairs.key!r}: the whole image is compared, "
                             "so the intended edit itself counts as identity loss")
            else:
                notes.append(f"edited region: |{pairs.oracle_key} - original| > {self.region_tol:g}, "
                             f"dilated by {self.dilate} px")
        return notes

    def _result(
        self,
        ctx: MetricContext,
        name: str,
        k: int,
        label: str,
        hib: bool | None,
        table: MeanTable,
        attribute: str | None,
        pairs: _Pairs,
        notes: list[str],
        missing: str | None,
        means: MeanTable,
    ) -> MetricResult:
        n_ok = int(table.count[:, k].sum())
        status, extra = "ok", []
        if missing is not None:
            status, extra = "not_applicable", [missing]
        elif n_ok == 0:
            status, extra = "not_applicable", ["no pair where it is defined (e.g. the edit covers the whole image, "
                                               "or there is no oracle counterfactual)"]
        elif n_ok < ctx.stats.min_group_size:
            status, extra = "too_small", [f"only {n_ok} pair(s) (< min_group_size={ctx.stats.min_group_size})"]
        elif num(table.overall[k]) is None:
            status, extra = "not_applicable", ["undefined: neither the generator's nor the oracle's edits change "
                                               "any decision (or both change every one)"]
        ok = status == "ok"
        return MetricResult(
            metric=name,
            plugin=self.name,
            attribute=attribute,
            label=label,
            value=num(table.overall[k]) if ok else None,
            ci_low=num(table.overall_low[k]) if ok else None,
            ci_high=num(table.overall_high[k]) if ok else None,
            higher_is_better=hib,
            status=status,  # type: ignore[arg-type]
            per_group=self._per_group(ctx, table, k, attribute, name) if missing is None else [],
            notes=[*notes, *extra],
            details=self._details(name, means, pairs),
        )

    @staticmethod
    def _per_group(
        ctx: MetricContext, table: MeanTable, k: int, attribute: str | None, name: str
    ) -> list[GroupValue]:
        is_rate = name in ("cf_classifier_flip_rate", "cf_artefact_flip_rate")
        return group_values(table, k, attribute, ctx.stats.min_group_size, is_rate=is_rate)

    def _details(self, name: str, table: MeanTable, pairs: _Pairs) -> dict[str, Any]:
        details: dict[str, Any] = {"factor": pairs.key, "oracle": pairs.oracle_key, "n_pairs": pairs.n_pairs}
        if name == KAPPA:
            details["agreement"] = _summary(table, COLUMNS.index("agree"))
            details["generator_flip_rate"] = num(table.overall[COLUMNS.index("flip")])
            details["oracle_flip_rate"] = num(table.overall[COLUMNS.index("oracle_flip")])
        if name == "cf_artefact_flip_rate":
            details["artefact_edit"] = pairs.artefact_edit
            details["artefact_edit_source"] = pairs.artefact_edit_source
        if name == "cf_classifier_flip_rate":
            details["oracle_flip_rate"] = _summary(table, COLUMNS.index("oracle_flip"))
            details["difference_to_oracle"] = _summary(table, COLUMNS.index("flip_minus_oracle"))
        if name in ("cf_identity_l1", "cf_identity_ssim"):
            k_out = COLUMNS.index("l1_out")
            details["edited_region"] = {
                "source": pairs.oracle_key or "none (whole image compared)",
                "region_tol": self.region_tol,
                "dilate": self.dilate,
                "mean_fraction": pairs.region_fraction,
                "pairs_without_unedited_pixels": int(pairs.n_pairs - table.count[:, k_out].sum()),
            }
            details["oracle_agreement_in_region_l1"] = _summary(table, COLUMNS.index("l1_in"))
        if name == "cf_identity_ssim":
            details["ssim_window"] = self.ssim_window
        return details


def kappa_table(table: MeanTable, ci_level: float) -> MeanTable:
    """``table`` with the ``agree`` column replaced by Cohen's kappa of the generator's and the
    oracle's decision flips (per group, overall and per bootstrap resample, hence its CIs)."""
    a, f, o = (COLUMNS.index(c) for c in ("agree", "flip", "oracle_flip"))

    def kappa(m: np.ndarray) -> np.ndarray:
        return cohen_kappa(m[..., a], m[..., f], m[..., o])

    def put(m: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.array(m, dtype=np.float64, copy=True)
        out[..., a] = values
        return out

    point, overall = kappa(table.point), kappa(table.overall)
    if table.reps is None or table.overall_reps is None:
        low = high = np.full_like(point, np.nan)
        olow = ohigh = np.full_like(overall, np.nan)
    else:
        low, high = percentile_ci(kappa(table.reps), ci_level)
        olow, ohigh = percentile_ci(kappa(table.overall_reps), ci_level)
    return MeanTable(table.names, table.count, put(table.total, np.nan), put(table.point, point),
                     put(table.low, low), put(table.high, high), put(table.overall, overall),
                     put(table.overall_low, olow), put(table.overall_high, ohigh))


def group_values(
    table: MeanTable, k: int, attribute: str | None, min_group_size: int, *, is_rate: bool
) -> list[GroupValue]:
    """Column ``k`` of ``table`` per group; for a rate of 0/1 pairs, ``n_pos`` counts the ones."""
    return [
        GroupValue(
            attribute=attribute or "all",
            group=group,
            n=int(table.count[i, k]),
            n_pos=int(np.rint(table.total[i, k])) if is_rate else None,
            value=num(table.point[i, k]),
            ci_low=num(table.low[i, k]),
            ci_high=num(table.high[i, k]),
            too_small=bool(table.count[i, k] < min_group_size),
        )
        for i, group in enumerate(table.names)
    ]


def _summary(table: MeanTable, k: int) -> dict[str, Any]:
    """Overall value, CI and per-group values of column ``k`` (JSON-safe)."""
    return {
        "value": num(table.overall[k]),
        "ci_low": num(table.overall_low[k]),
        "ci_high": num(table.overall_high[k]),
        "n": int(table.count[:, k].sum()),
        "by_group": {g: num(table.point[i, k]) for i, g in enumerate(table.names)},
    }
