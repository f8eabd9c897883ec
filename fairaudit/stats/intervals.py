"""Confidence intervals that cover: per-group proportions and AUC, and the gaps between groups.

Chosen by simulation (``benchmarks/bench_coverage.py``; figures in ``docs/statistics.md``):

* **Per-group proportion** (TPR, FPR, PPV, selection rate...): Clopper–Pearson, exact for one row
  per patient; with several rows per patient the Korn–Graubard version, i.e. Clopper–Pearson on
  the *effective* sample size ``n / deff`` (design effect ``deff >= 1`` from the patient-cluster
  linearised variance, degrees of freedom ``patients - 1``).  It never collapses to ``[1, 1]``
  and never covers less than the nominal level for a binomial count.
* **Per-group AUC**: a score-type interval: the AUCs ``A`` with
  ``(Â - A)² <= z² · deff · V_HM(A)``, where ``V_HM`` is Hanley & McNeil's variance at ``A``
  (zero at 0 and 1, so the interval behaves at the boundary like Wilson's) and ``deff >= 1`` the
  ratio of DeLong's variance (patient-clustered when needed; then ``t`` instead of ``z``, with
  the smaller class's patients − 1 degrees of freedom) to ``V_HM(Â)``.  The empirical AUC is skewed away from
  the nearer boundary, so on that side (the upper limit when ``Â >= 0.5``) the limit is the
  wider of the score limit and the logit-Wald limit ``logit(Â) ± z · SE / (Â(1 − Â))``.
* **Gaps, ratios and worst groups** are the maximum (or minimum) of a family of simpler
  quantities (``max − min = max over ordered pairs of p_i − p_j``; ``min/max`` = the smallest
  pairwise ratio).  Each pair gets a MOVER interval (Newcombe's hybrid method, built from the
  groups' own intervals).  The upper bound of a maximum is the largest *marginal* upper bound
  (the pair that is truly largest is among them, so no multiplicity is needed); its lower bound
  is the largest Bonferroni-adjusted lower bound, floored at 0.  This removes the upward bias of
  ``max − min`` that made percentile intervals miss a zero gap in a quarter of small-group runs.

Everything is vectorised over leading axes (groups last), so the coverage benchmark evaluates
thousands of simulated data sets in one call.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fairaudit.stats import confusion as cm
from fairaudit.stats.special import beta_ppf, t_quantile, z_quantile

Limits = tuple[np.ndarray, np.ndarray]
LimitsFn = Callable[[Sequence[float]], list[Limits]]

#: How the events a rate divides by are named in "too small" reasons.
EVENT_NAMES = {
    (cm.FN, cm.TP): "positives",
    (cm.TN, cm.FP): "negatives",
    (cm.FP, cm.TP): "predicted positives",
    (cm.TN, cm.FN): "predicted negatives",
    (cm.TN, cm.FP, cm.FN, cm.TP): "rows",
}


# ---------------------------------------------------------------- single proportions
def clopper_pearson(x: np.ndarray, n: np.ndarray, level: float | np.ndarray) -> Limits:
    """Clopper–Pearson limits for ``x`` successes in ``n`` trials (real-valued counts allowed).

    ``level`` may vary per element.  ``n = 0`` gives NaN limits; ``x = 0`` a lower limit of 0,
    ``x = n`` an upper limit of 1.
    """
    x, n, lv = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, n, level)))
    a = (1.0 - lv) / 2.0
    lo = np.full(x.shape, np.nan)
    hi = np.full(x.shape, np.nan)
    ok = n > 0
    ns, aa = n[ok], a[ok]
    xs = np.clip(x[ok], 0.0, ns)
    low_part, hi_part = xs > 0, xs < ns
    lo_ok, hi_ok = np.zeros(xs.shape), np.ones(xs.shape)
    # one beta-quantile call for both ends
    q = np.concatenate([aa[low_part], 1 - aa[hi_part]])
    pa = np.concatenate([xs[low_part], xs[hi_part] + 1])
    pb = np.concatenate([ns[low_part] - xs[low_part] + 1, ns[hi_part] - xs[hi_part]])
    if len(q):
        quant = beta_ppf(q, pa, pb)
        k = int(low_part.sum())
        lo_ok[low_part], hi_ok[hi_part] = quant[:k], quant[k:]
    lo[ok], hi[ok] = lo_ok, hi_ok
    return lo, hi


def wilson(x: np.ndarray, n: np.ndarray, level: float) -> Limits:
    """Wilson score limits (a candidate the coverage benchmark compares; not the default)."""
    x, n = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(n, dtype=np.float64))
    z = z_quantile(1 - (1 - level) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


# ---------------------------------------------------------------- patient clusters
@dataclass(frozen=True)
class ClusterStats:
    """What the design effect of any confusion rate needs, per group (patients as clusters).

    ``moments[g] = Σ_c n_c n_cᵀ`` over the patients ``c`` of group ``g`` (``n_c``: the patient's
    four cell counts); ``patterns[g, mask]`` counts the patients whose non-empty cells form
    ``mask`` (bit ``k`` = cell ``k``); ``singleton[g]``: every patient of the group has one row.
    """

    moments: np.ndarray
    patterns: np.ndarray
    singleton: np.ndarray

    @classmethod
    def from_rows(
        cls, codes: np.ndarray, cells: np.ndarray, row_patient: np.ndarray | None, n_groups: int
    ) -> ClusterStats:
        """From each row's group code (``>= 0``), confusion cell and patient code (``>= 0``;
        ``None``: one row per patient)."""
        codes = np.asarray(codes, dtype=np.int64)
        cells = np.asarray(cells, dtype=np.int64)
        if row_patient is None or len(np.unique(row_patient)) == len(codes):
            counts = np.bincount(codes * 4 + cells, minlength=4 * n_groups).reshape(n_groups, 4)
            patterns = np.zeros((n_groups, 16), dtype=np.int64)
            patterns[:, 1 << np.arange(4)] = counts
            moments = np.zeros((n_groups, 4, 4))
            moments[:, np.arange(4), np.arange(4)] = counts
            return cls(moments, patterns, np.ones(n_groups, dtype=bool))
        # a cluster is a patient within a group (a patient whose rows span groups splits)
        patient = np.asarray(row_patient, dtype=np.int64)
        _, cluster = np.unique(codes * (int(patient.max()) + 1) + patient, return_inverse=True)
        cluster = cluster.reshape(-1)
        n_clusters = int(cluster.max()) + 1 if len(cluster) else 0
        per = np.zeros((n_clusters, 4), dtype=np.int64)
        np.add.at(per, (cluster, cells), 1)
        group = np.zeros(n_clusters, dtype=np.int64)
        group[cluster] = codes
        moments = np.zeros((n_groups, 4, 4), dtype=np.float64)
        np.add.at(moments, group, per[:, :, None] * per[:, None, :].astype(np.float64))
        mask = (per > 0) @ (1 << np.arange(4))
        patterns = np.zeros((n_groups, 16), dtype=np.int64)
        np.add.at(patterns, (group, mask), 1)
        big = np.zeros(n_groups, dtype=bool)
        np.logical_or.at(big, group, per.sum(1) > 1)
        return cls(moments, patterns, ~big)

    def take(self, idx: np.ndarray) -> ClusterStats:
        return ClusterStats(self.moments[idx], self.patterns[idx], self.singleton[idx])

    def rest(self) -> ClusterStats:
        """For each group, every *other* group pooled (the comparison of ``to_overall`` gaps)."""
        n = len(self.singleton)
        others = [np.delete(np.arange(n), g) for g in range(n)]
        return ClusterStats(
            self.moments.sum(0, keepdims=True) - self.moments,
            self.patterns.sum(0, keepdims=True) - self.patterns,
            np.array([bool(self.singleton[o].all()) for o in others], dtype=bool),
        )

    def pooled(self) -> ClusterStats:
        """All groups as one (the overall value)."""
        return ClusterStats(
            self.moments.sum(0, keepdims=True),
            self.patterns.sum(0, keepdims=True),
            np.array([bool(self.singleton.all())]),
        )


def effective_size(
    x: np.ndarray, n: np.ndarray, rate: str, clusters: ClusterStats | None
) -> tuple[np.ndarray, np.ndarray]:
    """Effective sample size ``n / deff`` and degrees of freedom (``inf``: no clustering).

    ``deff = max(1, V_cluster / V_binomial)`` with the linearised (ratio-estimator) variance over
    patients, ``V = C/(C-1) Σ_c (a_c − p b_c)² / n²`` over the ``C`` patients with a row in the
    denominator.  When ``p`` is 0 or 1 the variance cannot be estimated and the worst case
    ``deff = n / C`` (every patient's rows alike) is used.
    """
    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if clusters is None or bool(clusters.singleton.all()):
        return n.copy(), np.full(n.shape, np.inf)
    spec = cm.RATES[rate]
    num, den = list(spec.num), list(spec.den)
    mom = clusters.moments
    s_aa = mom[..., num, :][..., :, num].sum((-1, -2))
    s_ab = mom[..., num, :][..., :, den].sum((-1, -2))
    s_bb = mom[..., den, :][..., :, den].sum((-1, -2))
    den_mask = sum(1 << k for k in den)
    uses = (np.arange(16) & den_mask) > 0
    c = clusters.patterns[..., uses].sum(-1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        resid = np.maximum(s_aa - 2 * p * s_ab + p * p * s_bb, 0.0)
        v = resid / (n * n) * c / (c - 1)
        deff = v / (p * (1 - p) / n)
        interior = (p > 0) & (p < 1) & (c > 1)
        deff = np.where(interior, deff, n / np.maximum(c, 1))
    deff = np.where(np.isfinite(deff), np.maximum(deff, 1.0), 1.0)
    single = clusters.singleton
    n_eff = np.where(single, n, n / deff)
    df = np.where(single, np.inf, c - 1)
    return n_eff, df


def korn_graubard_size(n_eff: np.ndarray, df: np.ndarray, level: float) -> np.ndarray:
    """Korn–Graubard degrees-of-freedom correction ``n_eff (z / t_df)²`` (0 when ``df < 1``)."""
    finite = np.isfinite(df)
    if not finite.any():
        return n_eff
    out = n_eff.copy()
    a = (1 - level) / 2
    z = z_quantile(1 - a)
    ok = finite & (df >= 1)
    if ok.any():
        t = t_quantile(a, df[ok])
        out[ok] = n_eff[ok] * (z / t) ** 2
    out[finite & (df < 1)] = 0.0
    return out


# ---------------------------------------------------------------- per-group estimates
class GroupEstimates:
    """Point values per group (last axis) and their two-sided limits at any level (cached).

    ``bounds`` is the range of the metric (e.g. ``(0, 1)`` for a proportion); limits stay inside.
    """

    def __init__(self, value: np.ndarray, limits_fn: LimitsFn, bounds: tuple[float, float] = (0.0, 1.0)):
        self.value = np.asarray(value, dtype=np.float64)
        self._fn = limits_fn
        self._cache: dict[float, Limits] = {}
        self.bounds = bounds

    def prefetch(self, levels: Sequence[float]) -> None:
        """Compute the limits of several levels at once (one vectorised call)."""
        todo = sorted({float(v) for v in levels} - set(self._cache))
        if todo:
            for level, lim in zip(todo, self._fn(todo), strict=True):
                self._cache[level] = lim

    def limits(self, level: float) -> Limits:
        self.prefetch([level])
        return self._cache[float(level)]

    def take(self, idx: np.ndarray) -> GroupEstimates:
        """Only some groups (last axis)."""
        parent = self

        def fn(levels: Sequence[float]) -> list[Limits]:
            parent.prefetch(levels)
            return [(parent._cache[lv][0][..., idx], parent._cache[lv][1][..., idx]) for lv in levels]

        return GroupEstimates(self.value[..., idx], fn, self.bounds)


def rate_estimates(
    counts: np.ndarray, rate: str, clusters: ClusterStats | None = None
) -> GroupEstimates:
    """Per-group ``rate`` from confusion counts ``(..., G, 4)`` with (Korn–Graubard) Clopper–Pearson limits."""
    spec = cm.RATES[rate]
    c = np.asarray(counts, dtype=np.float64)
    x = c[..., list(spec.num)].sum(-1)
    n = c[..., list(spec.den)].sum(-1)
    n_eff, df = effective_size(x, n, rate, clusters)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, x / n, np.nan)

    def fn(levels: Sequence[float]) -> list[Limits]:
        return _cp_batch(p, [korn_graubard_size(n_eff, df, lv) for lv in levels], levels)

    return GroupEstimates(p, fn)


def _cp_batch(p: np.ndarray, sizes: Sequence[np.ndarray], levels: Sequence[float]) -> list[Limits]:
    """Clopper–Pearson on ``(p n_eff, n_eff)`` for several levels, once per distinct triple."""
    flat_p = np.tile(p.reshape(-1), len(levels))
    flat_n = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1) for s in sizes])
    flat_l = np.repeat(np.asarray(levels, dtype=np.float64), p.size)
    ok = np.isfinite(flat_p)
    lo = np.full(flat_p.shape, np.nan)
    hi = np.full(flat_p.shape, np.nan)
    if ok.any():
        triples = np.stack([flat_p[ok], flat_n[ok], flat_l[ok]], axis=1)
        uniq, inv = np.unique(triples, axis=0, return_inverse=True)
        ul, uh = clopper_pearson(uniq[:, 0] * uniq[:, 1], uniq[:, 1], uniq[:, 2])
        zero = uniq[:, 1] <= 0  # no information (e.g. a single patient): the whole range
        ul, uh = np.where(zero, 0.0, ul), np.where(zero, 1.0, uh)
        inv = inv.reshape(-1)
        lo[ok], hi[ok] = ul[inv], uh[inv]
    lo, hi = lo.reshape(len(levels), *p.shape), hi.reshape(len(levels), *p.shape)
    return [(lo[i], hi[i]) for i in range(len(levels))]


# ---------------------------------------------------------------- AUC
def hanley_mcneil_variance(auc: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray) -> np.ndarray:
    """Hanley & McNeil (1982) variance of the empirical AUC at true value ``auc``."""
    a = np.asarray(auc, dtype=np.float64)
    q1 = a / (2 - a)
    q2 = 2 * a * a / (1 + a)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)


def _placements(y: np.ndarray, s: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC (ties count ½) and DeLong's placement values of positives and negatives."""
    pos, neg = s[y == 1], s[y == 0]
    sp, sn = np.sort(pos), np.sort(neg)
    v10 = (np.searchsorted(sn, pos, "left") + np.searchsorted(sn, pos, "right")) / (2.0 * len(neg))
    v01 = (2 * len(pos) - np.searchsorted(sp, neg, "left") - np.searchsorted(sp, neg, "right")) / (
        2.0 * len(pos)
    )
    return float(v10.mean()), v10, v01


def auc_variance(y: np.ndarray, s: np.ndarray, patient: np.ndarray | None) -> tuple[float, float, int, int]:
    """Empirical AUC, its DeLong variance (patient-clustered when patients repeat), the number
    of patients, and the patients of the smaller class (the degrees of freedom's source)."""
    y = np.asarray(y)
    m, n = int((y == 1).sum()), int((y == 0).sum())
    if m == 0 or n == 0:
        return float("nan"), float("nan"), 0, 0
    auc, v10, v01 = _placements(y, np.asarray(s, dtype=np.float64))
    if patient is None or len(np.unique(patient)) == len(y):
        if m < 2 or n < 2:
            return auc, float("nan"), len(y), min(m, n)
        var = ((v10 - auc) ** 2).sum() / (m * (m - 1)) + ((v01 - auc) ** 2).sum() / (n * (n - 1))
        return auc, float(var), len(y), min(m, n)
    _, pc = np.unique(patient, return_inverse=True)
    pc = pc.reshape(-1)
    psi = np.zeros(int(pc.max()) + 1)
    np.add.at(psi, pc[y == 1], (v10 - auc) / m)
    np.add.at(psi, pc[y == 0], (v01 - auc) / n)
    c = len(psi)
    var = float((psi**2).sum() * c / (c - 1)) if c > 1 else float("nan")
    smaller = min(len(np.unique(pc[y == 1])), len(np.unique(pc[y == 0])))
    return auc, var, c, smaller


def auc_estimates(
    y: np.ndarray,
    score: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    patient: np.ndarray | None = None,
    value: np.ndarray | None = None,
) -> GroupEstimates:
    """Per-group AUC (``codes``: group per row, ``-1`` skipped) with score-type limits (module doc).

    ``value`` replaces the point values (e.g. the engine's own, equal to scikit-learn's).
    """
    y = np.asarray(y)
    score = np.asarray(score, dtype=np.float64)
    codes = np.asarray(codes)
    stats = np.full((6, n_groups), np.nan)  # auc, variance, positives, negatives, patients, smaller class's
    rows_per_group = np.bincount(codes[codes >= 0], minlength=n_groups).astype(np.float64)
    for g in range(n_groups):
        rows = codes == g
        yg = y[rows]
        pg = None if patient is None else np.asarray(patient)[rows]
        auc, var, c, smaller = auc_variance(yg, score[rows], pg)
        stats[:, g] = auc, var, (yg == 1).sum(), (yg == 0).sum(), c, smaller
    clustered = np.isfinite(stats[4]) & (stats[4] < rows_per_group) & (patient is not None)
    return auc_estimates_from(
        stats[0] if value is None else np.asarray(value, dtype=np.float64),
        stats[1], stats[2], stats[3], np.where(clustered, stats[4], np.inf), rows_per_group,
        np.where(clustered, stats[5], np.inf),
    )


def auc_estimates_from(
    auc: np.ndarray,
    variance: np.ndarray,
    n_pos: np.ndarray,
    n_neg: np.ndarray,
    patients: np.ndarray,
    rows: np.ndarray,
    class_patients: np.ndarray | None = None,
) -> GroupEstimates:
    """AUC limits from per-group summaries (any leading axes): DeLong ``variance``, class sizes,
    ``patients`` (``inf`` when every patient has one row), ``rows`` and ``class_patients``, the
    patients of the smaller class (degrees of freedom ``class_patients − 1``; default ``patients``)."""
    if class_patients is None:
        class_patients = patients
    auc, variance, n_pos, n_neg, patients, rows, class_patients = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (auc, variance, n_pos, n_neg, patients, rows, class_patients))
    )
    hm = hanley_mcneil_variance(auc, n_pos, n_neg)
    clustered = np.isfinite(patients)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = variance / hm
        worst = rows / np.maximum(patients, 1)
    deff = np.where(np.isfinite(ratio) & (hm > 0), np.maximum(ratio, 1.0), np.where(clustered, worst, 1.0))
    df = np.where(clustered, class_patients - 1, np.inf)

    with np.errstate(invalid="ignore", divide="ignore"):
        var_hat = np.maximum(np.where(np.isfinite(variance), variance, 0.0), hm)
        logit_se = np.sqrt(var_hat) / (auc * (1 - auc))
        logit = np.log(auc / (1 - auc))
    inside = (auc > 0) & (auc < 1) & np.isfinite(logit_se)

    def fn(levels: Sequence[float]) -> list[Limits]:
        out = []
        for lv in levels:
            a2 = (1 - lv) / 2
            crit = np.full(auc.shape, z_quantile(1 - a2))
            fin = np.isfinite(df) & (df >= 1)
            if fin.any():
                crit[fin] = t_quantile(a2, df[fin])
            crit[np.isfinite(df) & (df < 1)] = np.inf
            lo, hi = _auc_score_limits(auc, n_pos, n_neg, crit**2 * deff)
            # the boundary-side limit: the wider of the score and the logit-Wald limits
            with np.errstate(invalid="ignore", over="ignore"):
                l_lo = 1 / (1 + np.exp(-(logit - crit * logit_se)))
                l_hi = 1 / (1 + np.exp(-(logit + crit * logit_se)))
            hi = np.where(inside & (auc >= 0.5), np.fmax(hi, l_hi), hi)
            lo = np.where(inside & (auc < 0.5), np.fmin(lo, l_lo), lo)
            out.append((lo, hi))
        return out

    return GroupEstimates(auc, fn)


def _auc_score_limits(a_hat: np.ndarray, m: np.ndarray, n: np.ndarray, c: np.ndarray) -> Limits:
    """The AUCs ``A`` with ``(Â − A)² <= c · V_HM(A)`` around ``Â`` (bisection on each side)."""

    def g(a: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            return (a_hat - a) ** 2 - c * hanley_mcneil_variance(a, m, n)

    ok = np.isfinite(a_hat) & (m > 0) & (n > 0)
    lo = np.where(ok, 0.0, np.nan)
    hi = np.where(ok, 1.0, np.nan)
    inf = ok & ~np.isfinite(c)
    run = ok & ~inf
    # lower: g(0) >= 0 >= g(Â); upper: g(Â) <= 0 <= g(1)
    a0, a1 = np.zeros_like(a_hat), np.where(run, a_hat, 0.0)
    b0, b1 = np.where(run, a_hat, 1.0), np.ones_like(a_hat)
    for _ in range(50):
        mid = (a0 + a1) / 2
        pos = g(mid) > 0
        a0, a1 = np.where(pos, mid, a0), np.where(pos, a1, mid)
        mid2 = (b0 + b1) / 2
        pos2 = g(mid2) > 0
        b0, b1 = np.where(pos2, b0, mid2), np.where(pos2, mid2, b1)
    lo = np.where(run, a0, lo)
    hi = np.where(run, b1, hi)
    return lo, hi


def wald_estimates(value: np.ndarray, samples: np.ndarray, bounds: tuple[float, float]) -> GroupEstimates:
    """Normal limits ``value ± z · SD(bootstrap samples)`` at any level (metrics outside the coverage grid)."""
    v = np.asarray(value, dtype=np.float64)
    sd = np.full(v.shape, np.nan)
    if len(samples) > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups (undefined metric)
            sd = np.nanstd(np.asarray(samples, dtype=np.float64), axis=0, ddof=1)

    def fn(levels: Sequence[float]) -> list[Limits]:
        out = []
        for lv in levels:
            z = z_quantile(1 - (1 - lv) / 2)
            out.append((np.clip(v - z * sd, *bounds), np.clip(v + z * sd, *bounds)))
        return out

    return GroupEstimates(v, fn, bounds)


# ---------------------------------------------------------------- gaps between groups
@dataclass(frozen=True)
class Bounds:
    """A point value and its interval (scalars or arrays over leading axes)."""

    value: np.ndarray | float
    ci_low: np.ndarray | float
    ci_high: np.ndarray | float


def _nanmax(v: np.ndarray, axis: tuple[int, ...] | int) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        filled = np.where(np.isnan(v), -np.inf, v)
        out = np.max(filled, axis=axis)
    return np.where(np.isneginf(out), np.nan, out)


def _level(alpha_one_sided: float) -> float:
    """Two-sided level whose one-sided error is ``alpha_one_sided``."""
    return 1.0 - 2.0 * alpha_one_sided


def _mover(v1: np.ndarray, lim1: Limits, v2: np.ndarray, lim2: Limits) -> Limits:
    """MOVER (Newcombe hybrid) limits of ``θ1 − θ2`` from each one's estimate and limits."""
    d = v1 - v2
    low = d - np.sqrt((v1 - lim1[0]) ** 2 + (lim2[1] - v2) ** 2)
    high = d + np.sqrt((lim1[1] - v1) ** 2 + (v2 - lim2[0]) ** 2)
    return low, high


def _pair_differences(est: GroupEstimates, a_up: float, a_low: float) -> tuple[np.ndarray, np.ndarray]:
    """MOVER upper (one-sided ``a_up``) and lower (``a_low``) bounds of ``p_i − p_j``, ``(..., G, G)``."""
    v = est.value
    est.prefetch([_level(a_up), _level(a_low)])
    lo1, hi1 = est.limits(_level(a_up))
    lo2, hi2 = est.limits(_level(a_low))
    col, row = (..., slice(None), None), (..., None, slice(None))
    _, up = _mover(v[col], (lo1[col], hi1[col]), v[row], (lo1[row], hi1[row]))
    low, _ = _mover(v[col], (lo2[col], hi2[col]), v[row], (lo2[row], hi2[row]))
    off = ~np.eye(v.shape[-1], dtype=bool)
    return np.where(off, up, np.nan), np.where(off, low, np.nan)


def gap_bounds(est: GroupEstimates, alpha: float, *, family: int = 1, split_upper: int = 1) -> Bounds:
    """Interval for ``max − min`` over the groups (last axis) at level ``1 − alpha``.

    Upper bound: the largest MOVER upper bound of ``p_i − p_j`` at one-sided ``alpha / 2``
    (``/ split_upper`` when this gap is summed with others).  Lower bound: the largest lower bound
    at one-sided ``alpha / (2 m)``, ``m = family · G (G − 1)`` ordered pairs (Bonferroni; ``family``
    counts gaps combined by a maximum, e.g. 2 for equalized odds), floored at 0.
    """
    v = est.value
    g = v.shape[-1]
    value = _nanmax(v, -1) - (-_nanmax(-v, -1))
    if g < 2:
        nan = np.full(value.shape, np.nan)
        return Bounds(value, nan, nan)
    m = family * g * (g - 1)
    up, low = _pair_differences(est, alpha / 2 / split_upper, alpha / 2 / m)
    width = est.bounds[1] - est.bounds[0]
    high = np.minimum(_nanmax(up, (-1, -2)), width)
    lower = np.maximum(_nanmax(low, (-1, -2)), 0.0)
    return Bounds(value, np.where(np.isnan(value), np.nan, lower), np.where(np.isnan(value), np.nan, high))


def _ratio_root(f: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """The ``c`` in ``[0, 1]`` where the decreasing ``f`` crosses 0 (1 when ``f(1) >= 0``)."""
    lo, hi = np.zeros(shape), np.ones(shape)
    top = f(hi) >= 0
    for _ in range(50):
        mid = (lo + hi) / 2
        pos = f(mid) >= 0
        lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
    return np.where(top, 1.0, lo)


def ratio_bounds(est: GroupEstimates, alpha: float, *, family: int = 1) -> Bounds:
    """Interval for ``min / max`` over the groups (1 = parity), at level ``1 − alpha``.

    ``min/max`` is the smallest pairwise ratio ``p_i / p_j``.  Each pair's limits invert MOVER
    bounds of ``p_i − c p_j`` (Fieller-like, found by bisection, so a zero rate is handled); the
    lower bound is the smallest marginal one (one-sided ``alpha / 2``), the upper the smallest
    Bonferroni one over ``family · G (G − 1)`` pairs (``family``: ratios combined by a minimum),
    capped at 1.
    """
    v = est.value
    g = v.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (-_nanmax(-v, -1)) / _nanmax(v, -1)
    if g < 2:
        nan = np.full(value.shape, np.nan)
        return Bounds(value, nan, nan)
    a_low, a_up = alpha / 2, alpha / 2 / (family * g * (g - 1))
    est.prefetch([_level(a_low), _level(a_up)])
    lo1, hi1 = est.limits(_level(a_low))
    lo2, hi2 = est.limits(_level(a_up))
    vi, vj = v[..., :, None], v[..., None, :]
    shape = np.broadcast_shapes(vi.shape, vj.shape)

    def lower_f(c: np.ndarray) -> np.ndarray:  # MOVER lower bound of p_i − c p_j, decreasing in c
        return vi - c * vj - np.sqrt((vi - lo1[..., :, None]) ** 2 + (c * (hi1[..., None, :] - vj)) ** 2)

    def upper_f(c: np.ndarray) -> np.ndarray:  # MOVER upper bound of p_i − c p_j, decreasing in c
        return vi - c * vj + np.sqrt((hi2[..., :, None] - vi) ** 2 + (c * (vj - lo2[..., None, :])) ** 2)

    off = ~np.eye(g, dtype=bool)
    with np.errstate(invalid="ignore"):
        low = np.where(off, _ratio_root(lower_f, shape), np.nan)
        high = np.where(off, _ratio_root(upper_f, shape), np.nan)
    lower = -_nanmax(-low, (-1, -2))
    upper = np.minimum(-_nanmax(-high, (-1, -2)), 1.0)
    bad = ~np.isfinite(value)
    return Bounds(value, np.where(bad, np.nan, lower), np.where(bad, np.nan, upper))


def worst_bounds(est: GroupEstimates, alpha: float, higher_is_better: bool) -> Bounds:
    """Interval for the worst group's value (min when higher is better, else max).

    The bound on the side of the worst value is marginal (one-sided ``alpha / 2``); the other is
    Bonferroni-adjusted over the ``G`` groups.
    """
    sign = -1.0 if higher_is_better else 1.0
    v = est.value
    g = v.shape[-1]
    a_near, a_far = alpha / 2, alpha / 2 / max(g, 1)
    est.prefetch([_level(a_near), _level(a_far)])
    lo1, hi1 = est.limits(_level(a_near))
    lo2, hi2 = est.limits(_level(a_far))
    value = sign * _nanmax(sign * v, -1)
    if higher_is_better:  # worst = min: low from marginal lows, high from adjusted highs
        low, high = -_nanmax(-lo1, -1), -_nanmax(-hi2, -1)
    else:
        low, high = _nanmax(lo2, -1), _nanmax(hi1, -1)
    return Bounds(value, low, high)


def combine_max(parts: Sequence[Bounds]) -> Bounds:
    """The maximum of several gaps whose lower bounds were Bonferroni-split over ``len(parts)``."""
    value = np.max(np.stack([np.asarray(p.value, dtype=np.float64) for p in parts]), axis=0)
    low = np.max(np.stack([np.asarray(p.ci_low, dtype=np.float64) for p in parts]), axis=0)
    high = np.max(np.stack([np.asarray(p.ci_high, dtype=np.float64) for p in parts]), axis=0)
    return Bounds(value, low, high)


def combine_mean(parts: Sequence[Bounds]) -> Bounds:
    """The mean of several gaps whose bounds were each computed at ``alpha / len(parts)``."""
    fields = ("value", "ci_low", "ci_high")
    stack = [np.stack([np.asarray(getattr(p, f), dtype=np.float64) for p in parts]) for f in fields]
    return Bounds(*(s.mean(0) for s in stack))


def combine_min(parts: Sequence[Bounds]) -> Bounds:
    """The minimum of several ratios (lower bounds marginal, upper bounds split over the parts)."""
    value = np.min(np.stack([np.asarray(p.value, dtype=np.float64) for p in parts]), axis=0)
    low = np.min(np.stack([np.asarray(p.ci_low, dtype=np.float64) for p in parts]), axis=0)
    high = np.min(np.stack([np.asarray(p.ci_high, dtype=np.float64) for p in parts]), axis=0)
    return Bounds(value, low, high)


def to_overall_bounds(est: GroupEstimates, rest: GroupEstimates, weight: np.ndarray, alpha: float) -> Bounds:
    """Interval for ``max_g |p_g − p_overall|`` (fairlearn's ``to_overall`` difference).

    ``p_g − p_overall = (1 − w_g)(p_g − p_rest)`` with ``w_g`` the group's share of the rate's
    denominator and ``p_rest`` the pooled rate of every other group (independent rows): a MOVER
    interval per group; the upper bound is marginal, the lower Bonferroni over the ``2 G`` signed
    members, floored at 0.  The point value is returned as ``NaN`` (the caller has fairlearn's).
    """
    v, r = est.value, rest.value
    g = v.shape[-1]
    a_up, a_low = alpha / 2, alpha / 2 / (2 * g)
    for e in (est, rest):
        e.prefetch([_level(a_up), _level(a_low)])
    lo_u, hi_u = _mover(v, est.limits(_level(a_up)), r, rest.limits(_level(a_up)))
    lo_l, hi_l = _mover(v, est.limits(_level(a_low)), r, rest.limits(_level(a_low)))
    scale = 1.0 - np.asarray(weight, dtype=np.float64)
    high = np.minimum(_nanmax(scale * np.maximum(hi_u, -lo_u), -1), est.bounds[1] - est.bounds[0])
    low = np.maximum(_nanmax(scale * np.maximum(lo_l, -hi_l), -1), 0.0)
    return Bounds(np.full(np.shape(high), np.nan), low, high)


def _decreasing_root(f: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """The ``c >= 0`` where the decreasing ``f`` crosses 0 (``inf`` if never), bisecting ``c = t / (1 − t)``."""
    lo, hi = np.zeros(shape), np.ones(shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(60):
            mid = (lo + hi) / 2
            pos = f(mid / (1 - mid)) >= 0
            lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
        return np.where(hi >= 1.0, np.inf, lo / (1 - lo))


def to_overall_ratio_bounds(est: GroupEstimates, rest: GroupEstimates, weight: np.ndarray, alpha: float) -> Bounds:
    """Interval for ``min_g min(r_g, 1 / r_g)``, ``r_g = p_g / p_overall`` (fairlearn's ``to_overall`` ratio).

    ``r_g = ρ / (w ρ + 1 − w)`` is increasing in ``ρ = p_g / p_rest``, whose limits invert MOVER
    bounds of ``p_g − c p_rest``.  The lower bound is marginal; the upper is Bonferroni over the
    groups, two-sided because the fold ``min(r, 1/r)`` can miss on either side.
    """
    v, r = est.value, rest.value
    w = np.asarray(weight, dtype=np.float64)
    g = v.shape[-1]
    a_low, a_up = alpha / 2, alpha / 2 / (2 * g)

    def rho_limits(a: float) -> Limits:
        for e in (est, rest):
            e.prefetch([_level(a)])
        lv, hv = est.limits(_level(a))
        lr, hr = rest.limits(_level(a))
        lower = _decreasing_root(lambda c: v - c * r - np.sqrt((v - lv) ** 2 + (c * (hr - r)) ** 2), v.shape)
        upper = _decreasing_root(lambda c: v - c * r + np.sqrt((hv - v) ** 2 + (c * (r - lr)) ** 2), v.shape)
        return lower, upper

    def to_r(rho: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(np.isinf(rho), 1.0 / w, rho / (w * rho + 1.0 - w))

    def fold(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.minimum(x, 1.0 / x)

    a1, b1 = (to_r(x) for x in rho_limits(a_low))
    a2, b2 = (to_r(x) for x in rho_limits(a_up))
    low_g = np.minimum(fold(a1), fold(b1))
    high_g = np.where((a2 <= 1) & (b2 >= 1), 1.0, np.maximum(fold(a2), fold(b2)))
    low = -_nanmax(-low_g, -1)
    high = np.minimum(-_nanmax(-high_g, -1), 1.0)
    return Bounds(np.full(np.shape(low), np.nan), low, high)


class RateIntervals:
    """Every interval reported for one confusion rate: per group, overall, gaps, ratios, worst group.

    ``counts`` are the groups' confusion counts ``(G, 4)``; gap methods take the indices of the
    groups judged (large enough).  ``family``/``split_upper`` are for gaps combined with others
    (see :func:`gap_bounds`).
    """

    def __init__(self, counts: np.ndarray, rate: str, clusters: ClusterStats | None, ci_level: float):
        self.counts = np.asarray(counts)
        self.rate = rate
        self.clusters = clusters
        self.level = ci_level
        self.alpha = 1.0 - ci_level
        self.groups = rate_estimates(self.counts, rate, clusters)
        self._rests: dict[tuple[int, ...], tuple[GroupEstimates, GroupEstimates, np.ndarray]] = {}

    def prepare(self, n_judged: int) -> None:
        """Compute in one call the limits every interval over ``n_judged`` groups needs (speed only)."""
        a, g = self.alpha, max(n_judged, 2)
        m = g * (g - 1)
        one_sided = [a / 2, a / 2 / 2, a / 2 / m, a / 2 / (2 * m), a / 2 / g, a / 2 / (2 * g)]
        self.groups.prefetch([self.level, *(_level(x) for x in one_sided)])

    def per_group(self) -> Limits:
        return self.groups.limits(self.level)

    def overall(self) -> Limits:
        pooled = None if self.clusters is None else self.clusters.pooled()
        lo, hi = rate_estimates(self.counts.sum(0, keepdims=True), self.rate, pooled).limits(self.level)
        return lo[0], hi[0]

    def gap(self, idx: np.ndarray, *, family: int = 1, split_upper: int = 1) -> Bounds:
        return gap_bounds(self.groups.take(idx), self.alpha, family=family, split_upper=split_upper)

    def ratio(self, idx: np.ndarray, *, family: int = 1) -> Bounds:
        return ratio_bounds(self.groups.take(idx), self.alpha, family=family)

    def worst(self, idx: np.ndarray, higher_is_better: bool) -> Bounds:
        return worst_bounds(self.groups.take(idx), self.alpha, higher_is_better)

    def _rest(self, idx: np.ndarray) -> tuple[GroupEstimates, GroupEstimates, np.ndarray]:
        key = tuple(int(i) for i in idx)
        if key not in self._rests:
            rest_counts = self.counts.sum(0, keepdims=True) - self.counts
            rest_clusters = None if self.clusters is None else self.clusters.rest().take(idx)
            rest = rate_estimates(rest_counts[idx], self.rate, rest_clusters)
            a, g = self.alpha, len(idx)
            rest.prefetch([_level(a / 2), _level(a / 2 / (2 * g))])
            den = self.counts[:, list(cm.RATES[self.rate].den)].sum(-1).astype(np.float64)
            self._rests[key] = (self.groups.take(idx), rest, den[idx] / max(den.sum(), 1.0))
        return self._rests[key]

    def to_overall(self, idx: np.ndarray) -> Bounds:
        return to_overall_bounds(*self._rest(idx), self.alpha)

    def ratio_to_overall(self, idx: np.ndarray) -> Bounds:
        return to_overall_ratio_bounds(*self._rest(idx), self.alpha)


# ---------------------------------------------------------------- too small to judge
def too_few_events(
    names: Sequence[str], events: dict[str, np.ndarray], minimum: dict[str, int]
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Groups with fewer events than required, and why.

    ``events`` maps an event name (``"positives"``, ``"negatives"``, ``"rows"``...) to its count
    per group; ``minimum`` the least count each needs.  Returns the mask of excluded groups and
    ``[{"group": name, "reason": "2 negatives < 5"}, ...]``.
    """
    small = np.zeros(len(names), dtype=bool)
    reasons: list[dict[str, str]] = []
    for i, name in enumerate(names):
        why = [
            f"{int(count[i])} {event} < {minimum[event]}"
            for event, count in events.items()
            if count[i] < minimum[event]
        ]
        if why:
            small[i] = True
            reasons.append({"group": str(name), "reason": ", ".join(why)})
    return small, reasons


def rate_events(rate: str) -> str:
    """The name of the events rate ``rate`` divides by (``"positives"`` for TPR...)."""
    return EVENT_NAMES[tuple(sorted(cm.RATES[rate].den))]
