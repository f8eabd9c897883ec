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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Upper bound on the elements of one chunk of row weights (memory ~ 8 bytes each).
CHUNK_ELEMENTS = 1 << 17


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
