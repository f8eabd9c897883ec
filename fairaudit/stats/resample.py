"""Patient-level resampling: bootstrap weights, bootstrap confusion counts, permuted counts.

Bootstrap scheme (why multinomial, not Poisson)
-----------------------------------------------
The unit of resampling is the *patient*: all rows of a patient enter or leave a resample together.
With ``stratified=True`` (the default) patients are resampled within their group (the group of the
patient's first row): each resample draws exactly ``n_s`` patients with replacement from the
``n_s`` patients of stratum ``s``, i.e. multinomial weights ``Multinomial(n_s, 1/n_s, ..., 1/n_s)``.
Group sizes are therefore fixed, as in the audited design, and a small group can never vanish from
a resample (Zhang et al., CHIL 2022, stratify on the group).  A Poisson(1) bootstrap would make
group sizes random, sometimes zero, which is why it is not used here.

Confusion-matrix metrics never need the row-level weights.  Patients with the same *profile* (the
vector of their confusion counts over every (group, cell)) are exchangeable, so the number of times
each profile is drawn is ``Multinomial(n_s, f_1/n_s, ..., f_P/n_s)`` where ``f_p`` counts the
patients of profile ``p``.  When every patient has one row the profiles are just the 4 cells of
the group, and a resample costs one 4-category multinomial draw per group, whatever the number
of rows: exactly the distribution of resampling rows, computed in ``O(B * G)``.

Score metrics need the count of every patient in every resample.  :class:`StratumCounts` draws
them without throwing ``n`` balls one by one: independent Poisson(lambda) counts per cell (a
table lookup of one 16-bit uniform gives two cells' counts) have, given their total ``T``, exactly the law of ``T``
balls thrown uniformly; completing them to the stratum size (throwing the ``m - T`` missing
balls, or removing ``T - m`` balls chosen uniformly) therefore gives exactly
``Multinomial(m, 1/m, ..., 1/m)``.  With ``lambda = 1 - 4 / sqrt(m)`` the completion is about
``4 sqrt(m)`` extra balls and almost never a removal.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Upper bound on the elements of one chunk of row weights (memory ~ 8 bytes each).
CHUNK_ELEMENTS = 1 << 17
#: Cells (bytes) of one chunk of :class:`StratumCounts` counts: a few resamples even of a large
#: layout, so that per-call overheads stay small against the work.
COUNT_CHUNK_CELLS = 1 << 20
#: Poisson rate of :class:`StratumCounts` for a stratum of ``m`` cells: ``1 - margin / sqrt(m)``.
POISSON_MARGIN = 4.0
#: Strata with fewer cells throw their ``m`` balls directly (rate 0).
MIN_POISSON_CELLS = 1024
_U_BITS = 16
#: Table entry of a bucket of 16-bit uniforms that straddles a step of the joint Poisson CDF.
_AMBIGUOUS_PAIR = 0xFFFF


@dataclass(frozen=True)
class Design:
    """Who is resampled: patients (clusters of rows), optionally stratified.

    Attributes
    ----------
    row_patient:
        Patient code of each row, ``(n,)`` in ``[0, n_patients)``.
    patient_stratum:
        Stratum of each patient, ``(n_patients,)`` (``0`` for all when unstratified).
    patient_group:
        Group of each patient's first row.
    singleton:
        Every patient has exactly one row (fast paths apply).
    """

    row_patient: np.ndarray
    patient_stratum: np.ndarray
    patient_group: np.ndarray
    n_patients: int
    singleton: bool

    def strata(self) -> list[np.ndarray]:
        """Patient indices of each non-empty stratum."""
        order = np.argsort(self.patient_stratum, kind="stable")
        bounds = np.flatnonzero(np.diff(self.patient_stratum[order])) + 1
        return [s for s in np.split(order, bounds) if len(s)]


def make_design(
    row_patient: np.ndarray | None, groups: np.ndarray, *, stratified: bool = True
) -> Design:
    """Resampling design from patient codes and group codes of the same rows (no ``-1`` groups).

    ``row_patient=None`` means one row per patient.
    """
    groups = np.asarray(groups, dtype=np.int64)
    n = len(groups)
    if row_patient is None:
        row_patient = np.arange(n, dtype=np.int64)
        n_patients, first = n, row_patient
    else:
        codes, uniq = pd.factorize(np.asarray(row_patient))
        row_patient = codes.astype(np.int64)
        n_patients = len(uniq)
        first = np.full(n_patients, n, dtype=np.int64)
        np.minimum.at(first, row_patient, np.arange(n))
    patient_group = groups[first] if n_patients else np.zeros(0, np.int64)
    stratum = patient_group if stratified else np.zeros(n_patients, dtype=np.int64)
    return Design(row_patient, stratum, patient_group, n_patients, n_patients == n)


def _profiles(
    keys: np.ndarray, design: Design, n_keys: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct patient profiles: count vectors ``(P, n_keys)``, stratum of each, multiplicity."""
    if design.singleton:
        # profile = the row's key; patients with the same (stratum, key) are exchangeable
        n_strata = int(design.patient_stratum.max(initial=0)) + 1
        freq = np.bincount(
            design.patient_stratum[design.row_patient] * n_keys + keys, minlength=n_strata * n_keys
        )
        present = np.flatnonzero(freq)
        prof = np.zeros((len(present), n_keys), dtype=np.int64)
        prof[np.arange(len(present)), present % n_keys] = 1
        return prof, present // n_keys, freq[present]
    # hash each patient's multiset of keys (random 64-bit weights, wrap-around sum)
    salt = np.random.default_rng(12345).integers(1, 2**63 - 1, size=n_keys, dtype=np.int64)
    h = np.zeros(design.n_patients, dtype=np.int64)
    with np.errstate(over="ignore"):
        np.add.at(h, design.row_patient, salt[keys])
    sig = np.stack([design.patient_stratum, h], axis=1)
    _, rep, inverse, freq = np.unique(
        sig, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    rows_of_rep = np.isin(design.row_patient, rep)
    prof = np.zeros((len(rep), n_keys), dtype=np.int64)
    np.add.at(prof, (inverse[design.row_patient[rows_of_rep]], keys[rows_of_rep]), 1)
    stratum = design.patient_stratum[rep]
    # canonical order (stratum, then profile lexicographically descending) = the singleton order,
    # so duplicating every row of every patient leaves the bootstrap draws unchanged
    order = np.lexsort([-prof[:, j] for j in range(n_keys - 1, -1, -1)] + [stratum])
    return prof[order], stratum[order], freq[order]


def bootstrap_key_counts(
    keys: np.ndarray, n_keys: int, design: Design, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Counts of each key per bootstrap resample, ``(B, n_keys)``, resampling patients.

    ``keys`` is an integer per row in ``[0, n_keys)`` (e.g. ``4 * group + cell``).
    """
    keys = np.asarray(keys, dtype=np.int64)
    prof, prof_stratum, freq = _profiles(keys, design, n_keys)
    out = np.zeros((n_boot, n_keys), dtype=np.int64)
    for s in np.unique(prof_stratum):
        sel = prof_stratum == s
        f = freq[sel].astype(np.float64)
        draws = rng.multinomial(int(f.sum()), f / f.sum(), size=n_boot)
        out += draws @ prof[sel]
    return out


def weight_chunks(
    design: Design, n_boot: int, rng: np.random.Generator, n_rows: int | None = None
) -> Iterator[np.ndarray]:
    """Patient bootstrap weights in chunks ``(b, n_patients)`` (int32), ``sum(b) == n_boot``.

    Within each stratum of ``n_s`` patients, a resample draws ``n_s`` of them with replacement.
    """
    size = max(n_rows or 0, design.n_patients, 1)
    chunk = max(1, CHUNK_ELEMENTS // size)
    strata = design.strata()
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        w = np.zeros((b, design.n_patients), dtype=np.int32)
        for idx in strata:
            m = len(idx)
            draws = rng.integers(0, m, size=(b, m))
            draws += (np.arange(b) * m)[:, None]
            w[:, idx] = np.bincount(draws.ravel(), minlength=b * m).reshape(b, m)
        done += b
        yield w


def permuted_counts(
    counts: np.ndarray, condition: str, n_perm: int, rng: np.random.Generator
) -> np.ndarray:
    """Exact permutation distribution of confusion counts, ``(P, G, 4)``, for one-row patients.

    Group labels are permuted among rows; within label strata (``condition="label"``: rows keep
    their ``y``, for TPR/FPR gaps), within prediction strata (``"prediction"``: PPV/NPV) or over all
    rows (``"none"``: selection rate, accuracy).  Each permutation assigns a group of fixed size the
    rows drawn without replacement from the pool, i.e. sequential (multivariate) hypergeometric
    draws: ``O(P * G)`` whatever the number of rows.
    """
    c = np.asarray(counts, dtype=np.int64)
    n_groups = c.shape[0]
    out = np.zeros((n_perm, n_groups, 4), dtype=np.int64)

    def split(sizes: np.ndarray, n_good: np.ndarray, n_total: np.ndarray) -> np.ndarray:
        """Good items per group when groups of ``sizes`` (P, G) draw without replacement."""
        good_left = np.broadcast_to(n_good, (n_perm,)).astype(np.int64).copy()
        total_left = np.broadcast_to(n_total, (n_perm,)).astype(np.int64).copy()
        goods = np.zeros((n_perm, n_groups), dtype=np.int64)
        for g in range(n_groups - 1):
            k = sizes[:, g]
            draw = rng.hypergeometric(good_left, total_left - good_left, k) if n_perm else k
            draw = np.where(k > 0, draw, 0)
            goods[:, g] = draw
            good_left -= draw
            total_left -= k
        goods[:, -1] = good_left
        return goods

    def fixed(sizes: np.ndarray) -> np.ndarray:
        return np.broadcast_to(sizes, (n_perm, n_groups))

    if condition == "label":
        # y=1 stratum: (fn, tp) with good = tp; y=0 stratum: (tn, fp) with good = fp
        pos = c[:, 2] + c[:, 3]
        neg = c[:, 0] + c[:, 1]
        tp = split(fixed(pos), c[:, 3].sum(), pos.sum())
        fp = split(fixed(neg), c[:, 1].sum(), neg.sum())
        out[..., 3], out[..., 2] = tp, pos - tp
        out[..., 1], out[..., 0] = fp, neg - fp
    elif condition == "prediction":
        ppos = c[:, 1] + c[:, 3]
        pneg = c[:, 0] + c[:, 2]
        tp = split(fixed(ppos), c[:, 3].sum(), ppos.sum())
        tn = split(fixed(pneg), c[:, 0].sum(), pneg.sum())
        out[..., 3], out[..., 1] = tp, ppos - tp
        out[..., 0], out[..., 2] = tn, pneg - tn
    elif condition == "none":
        n = c.sum(1)
        pos = split(fixed(n), (c[:, 2] + c[:, 3]).sum(), n.sum())
        neg = n - pos
        tp = split(pos, c[:, 3].sum(), (c[:, 2] + c[:, 3]).sum())
        fp = split(neg, c[:, 1].sum(), (c[:, 0] + c[:, 1]).sum())
        out[..., 3], out[..., 2] = tp, pos - tp
        out[..., 1], out[..., 0] = fp, neg - fp
    else:
        raise ValueError(f"condition must be 'label', 'prediction' or 'none', got {condition!r}")
    return out


def permuted_patient_groups(
    design: Design, strata: np.ndarray, n_perm: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Chunks ``(b, n_patients)`` of patient group labels permuted within per-patient ``strata``."""
    chunk = max(1, CHUNK_ELEMENTS // max(len(design.row_patient), 1))
    order = np.argsort(strata, kind="stable")
    bounds = np.flatnonzero(np.diff(strata[order])) + 1
    blocks = [b for b in np.split(order, bounds) if len(b)]
    done = 0
    while done < n_perm:
        b = min(chunk, n_perm - done)
        out = np.empty((b, design.n_patients), dtype=np.int64)
        for idx in blocks:
            out[:, idx] = rng.permuted(
                np.broadcast_to(design.patient_group[idx], (b, len(idx))), axis=1
            )
        done += b
        yield out


# ---------------------------------------------------------------- multinomial counts per stratum
#: Counts of ``_K`` or more have probability below 1e-17 for a rate up to 4 (the tables' range).
_K = 32


@functools.lru_cache(maxsize=64)
def _pair_table(lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Counts of *two* cells, independent Poisson(``lam``), for each bucket ``[j, j+1) / 2**16``
    of one uniform (byte 0: first cell, byte 1: second), and the joint CDF over the outcomes
    ``k1 * _K + k2``.  A bucket that a CDF step cuts gets ``_AMBIGUOUS_PAIR``; its cells are
    resolved with more bits."""
    k = np.arange(_K)
    p = np.exp(k * math.log(lam) - lam - np.array([math.lgamma(i + 1.0) for i in k]))
    cdf = np.minimum(np.cumsum(np.outer(p, p).ravel()), 1.0)
    cdf[-1] = 1.0
    edges = np.arange((1 << _U_BITS) + 1) / float(1 << _U_BITS)
    outcome = np.searchsorted(cdf, edges[:-1], side="right")
    cut = cdf[outcome] < edges[1:]
    table = np.where(cut, _AMBIGUOUS_PAIR, (outcome // _K) + ((outcome % _K) << 8)).astype(np.uint16)
    return table, cdf


_RAW64 = (np.random.PCG64, np.random.PCG64DXSM, np.random.SFC64, np.random.Philox)


def _uniform16(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` independent uniform 16-bit integers (four per raw 64-bit output when possible)."""
    if isinstance(rng.bit_generator, _RAW64):
        raw = rng.bit_generator.random_raw((size + 3) // 4)
        return raw.view(np.uint16)[:size]
    return rng.integers(0, 1 << _U_BITS, size=size, dtype=np.uint16)


class StratumCounts:
    """Bootstrap counts of cells grouped in contiguous strata: ``(b, n)`` uint8 per draw.

    Stratum ``s`` (cells ``starts[s] : starts[s] + sizes[s]``) receives ``sizes[s]`` draws with
    replacement among its own cells, i.e. ``Multinomial(m, 1/m, ..., 1/m)`` counts, the law of
    :func:`weight_chunks` (different random numbers).  See the module docstring; one 16-bit
    uniform gives the Poisson counts of two cells, and the only approximation is the float64
    rounding of the Poisson probabilities (about 1e-16 per cell).  A count of 256 would need 256
    of a stratum's draws to hit one cell (probability below 1e-500).
    """

    def __init__(self, sizes: np.ndarray, *, margin: float = POISSON_MARGIN):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        if len(self.sizes) == 0 or self.sizes.min() < 1:
            raise ValueError("every stratum needs at least one cell")
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.n = int(self.sizes.sum())
        lam = [1.0 - margin / math.sqrt(m) if m >= MIN_POISSON_CELLS else 0.0 for m in self.sizes]
        if max(lam) > 4.0:
            raise ValueError(f"Poisson rate {max(lam):.2f} above 4 (margin {margin})")
        self.tables = [_pair_table(round(x, 12)) if x > 0 else None for x in lam]
        self._pairs = np.array([(m + 1) // 2 if t is not None else 0 for m, t in zip(self.sizes, self.tables,
                                                                                     strict=True)])
        self._pair_starts = np.concatenate([[0], np.cumsum(self._pairs)[:-1]])

    def draw(self, b: int, rng: np.random.Generator) -> np.ndarray:
        """Counts of ``b`` resamples, ``(b, n)`` uint8."""
        w = np.zeros((b, self.n), dtype=np.uint8)
        u = _uniform16(rng, b * int(self._pairs.sum())).reshape(b, -1)
        for table, start, m, first, pairs in zip(self.tables, self.starts, self.sizes, self._pair_starts,
                                                 self._pairs, strict=True):
            if table is None:
                continue
            bits = u[:, first : first + pairs]
            counts = np.take(table[0], bits, mode="clip")  # (b, pairs) uint16: two cells each
            self._resolve(counts, bits, table[1], rng)
            w[:, start : start + m] = counts.view(np.uint8).reshape(b, 2 * pairs)[:, :m]
        missing = self.sizes[None, :] - np.add.reduceat(w, self.starts, axis=1, dtype=np.int64)
        self._add(w, np.maximum(missing, 0), rng)
        for r, s in np.argwhere(missing < 0):
            self._remove(w[r, self.starts[s] : self.starts[s] + self.sizes[s]], int(-missing[r, s]), rng)
        return w

    @staticmethod
    def _resolve(counts: np.ndarray, bits: np.ndarray, cdf: np.ndarray, rng: np.random.Generator) -> None:
        """Cells whose bucket a CDF step cuts: the uniform's further bits decide (float64)."""
        flat = counts.reshape(-1)
        cells = np.flatnonzero(flat == _AMBIGUOUS_PAIR)
        if len(cells):
            x = (bits.reshape(-1)[cells] + rng.random(len(cells))) / float(1 << _U_BITS)
            outcome = np.minimum(np.searchsorted(cdf, x, side="right"), len(cdf) - 1)
            flat[cells] = (outcome // _K) + ((outcome % _K) << 8)

    def _add(self, w: np.ndarray, extra: np.ndarray, rng: np.random.Generator) -> None:
        """Throw ``extra[r, s]`` more balls uniformly into stratum ``s`` of resample ``r``."""
        b = w.shape[0]
        where = []
        for s, (start, m) in enumerate(zip(self.starts, self.sizes, strict=True)):
            k = extra[:, s]
            total = int(k.sum())
            if total:
                row = np.repeat(np.arange(b, dtype=np.int64) * self.n + start, k)
                where.append(rng.integers(0, m, size=total) + row)
        if where:
            np.add.at(w.reshape(-1), np.concatenate(where), np.uint8(1))

    @staticmethod
    def _remove(cells: np.ndarray, k: int, rng: np.random.Generator) -> None:
        """Remove ``k`` of the balls in ``cells`` (a view), a uniformly random subset of them."""
        cum = np.cumsum(cells, dtype=np.int64)
        chosen = np.zeros(0, dtype=np.int64)
        while len(chosen) < k:  # drawing with replacement, keeping distinct balls: a uniform k-subset
            chosen = np.unique(np.concatenate([chosen, rng.integers(0, cum[-1], size=k - len(chosen))]))
        np.subtract.at(cells, np.searchsorted(cum, chosen, side="right"), np.uint8(1))

    def chunks(self, n_boot: int, rng: np.random.Generator, chunk: int | None = None) -> Iterator[np.ndarray]:
        """``n_boot`` resamples in chunks of at most ``chunk`` (default: cache-sized) rows.

        The uniforms come from an SFC64 generator seeded from ``rng`` (its raw output is about
        1.6 times as fast as PCG64's): the same ``rng`` state gives the same counts.
        """
        fast = np.random.Generator(np.random.SFC64(np.random.SeedSequence(rng.integers(0, 2**63, size=4).tolist())))
        size = chunk or max(1, COUNT_CHUNK_CELLS // self.n)
        done = 0
        while done < n_boot:
            b = min(size, n_boot - done)
            yield self.draw(b, fast)
            done += b
