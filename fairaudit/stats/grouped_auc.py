"""ROC AUC of every group and of all rows, for many integer resamples, from integer cumulative sums.

Rows are ranked once.  The *layout* puts each group's rows together, negatives then positives,
each sorted by score; a resample is a row of integer counts in that layout (bootstrap
multiplicities).  Per resample, one cumulative sum of the negatives' counts (int32: several
times faster than a float64 one) gives, read at precomputed ranks, every group's
Mann-Whitney numerator at once, and a second one over the rows in overall score order gives
the overall AUC: no loop over groups, no re-sort, ties with half credit.  Every sum is an exact
integer, so the AUC of each resample is bit-for-bit the value of
:func:`fairaudit.stats.ranking.weighted_auc` on the same counts (and equals
``sklearn.metrics.roc_auc_score`` with those counts as sample weights).
"""

from __future__ import annotations

import numpy as np

from fairaudit.stats.ranking import SortedScores, sort_scores


def _ones(dtype: np.dtype) -> np.generic:
    """All bits set in ``dtype`` (a mask that keeps a count)."""
    return ~np.zeros(1, dtype=dtype)[0]


def _segment_sums(x: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Sums of ``x`` ``(b, k)`` over column segments (empty segments give 0), int64."""
    out = np.zeros((x.shape[0], len(starts)), dtype=np.int64)
    full = sizes > 0
    if full.any():  # reduceat needs strictly increasing starts inside x
        out[:, full] = np.add.reduceat(x, starts[full], axis=1, dtype=np.int64)
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


class GroupedAUC:
    """AUC per group and overall for integer count matrices in :attr:`layout` order.

    Parameters
    ----------
    y_true, y_score:
        Binary labels and scores of the rows.
    codes:
        Group code per row in ``[0, n_groups)``.
    n_groups:
        Number of groups (a group may be empty).

    Attributes
    ----------
    layout:
        Row index of each layout position (groups in code order, each ``[neg, pos]`` sorted).
    group_starts, group_sizes:
        Where each group's rows sit in the layout.
    per_group:
        :class:`SortedScores` of each group, whose layout is the group's slice of ``layout``.
    overall:
        :class:`SortedScores` of all rows; ``overall.layout`` indexes layout positions.
    """

    def __init__(self, y_true: np.ndarray, y_score: np.ndarray, codes: np.ndarray, n_groups: int):
        y = np.asarray(y_true)
        s = np.asarray(y_score, dtype=np.float64)
        codes = np.asarray(codes, dtype=np.int64)
        rows = [np.flatnonzero(codes == g) for g in range(n_groups)]
        self.per_group: list[SortedScores] = [sort_scores(y[r], s[r]) for r in rows]
        empty = np.zeros(0, dtype=np.int64)
        self.layout = np.concatenate([r[ss.layout] for r, ss in zip(rows, self.per_group, strict=True)] or [empty])
        self.n = len(self.layout)
        self.group_sizes = np.array([ss.n for ss in self.per_group], dtype=np.int64)
        self.group_starts = np.concatenate([[0], np.cumsum(self.group_sizes)[:-1]]).astype(np.int64)
        self._neg_end = self.group_starts + np.array([ss.n_neg for ss in self.per_group], dtype=np.int64)
        self._end = self.group_starts + self.group_sizes
        n_pos = self._end - self._neg_end
        self._pos_starts = np.concatenate([[0], np.cumsum(n_pos)[:-1]]).astype(np.int64)
        self._n_pos = n_pos
        # C[j] = counts before layout position j; a group's negatives open its slice, so
        # C[start + k] - C[start] counts its k lowest-scored negatives
        self._pos = np.concatenate([np.arange(a, b) for a, b in zip(self._neg_end, self._end, strict=True)] or [empty])
        lo = [a + ss.lo for a, ss in zip(self.group_starts, self.per_group, strict=True)]
        hi = [a + ss.hi for a, ss in zip(self.group_starts, self.per_group, strict=True)]
        self._lo = np.concatenate(lo or [empty])
        self._hi = np.concatenate(hi or [empty])
        self._ties = bool(np.any(self._lo != self._hi))
        self.overall = sort_scores(y[self.layout], s[self.layout])
        self._cross = self._cross_ranks(n_groups) if self._cross_is_cheaper(n_groups) else None
        self._all_ties = bool(np.any(self.overall.lo != self.overall.hi))
        self._buffers: dict[str, np.ndarray] = {}

    def _scratch(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """A work array kept between calls (same shape and type), so chunks reuse its pages."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._buffers[name] = np.empty(shape, dtype=dtype)
        return buf

    def _cross_is_cheaper(self, n_groups: int) -> bool:
        """Overall AUC from the groups' cumulative sums (``G - 1`` reads per positive) or from
        a second cumulative sum in overall score order (about ``2 n`` reads)?"""
        reads = (n_groups - 1) * len(self._pos) * (2 if self._ties else 1)
        return reads <= self.n + self.overall.n_neg

    def _cross_ranks(self, n_groups: int) -> np.ndarray:
        """For each positive and each *other* group: its rank among that group's negatives
        (``lo`` rows, then ``hi`` rows when the scores tie), as positions in ``C``."""
        neg_scores = [ss.score[: ss.n_neg] for ss in self.per_group]
        rows_lo, rows_hi = [], []
        for shift in range(1, n_groups):
            lo, hi = [], []
            for g, ss in enumerate(self.per_group):
                h = (g + shift) % n_groups
                sp = ss.score[ss.n_neg :]
                lo.append(self.group_starts[h] + np.searchsorted(neg_scores[h], sp, side="left"))
                hi.append(self.group_starts[h] + np.searchsorted(neg_scores[h], sp, side="right"))
            rows_lo.append(np.concatenate(lo))
            rows_hi.append(np.concatenate(hi))
        self._cross_ties = any(np.any(a != b) for a, b in zip(rows_lo, rows_hi, strict=True))
        rows = rows_lo + rows_hi if self._cross_ties else rows_lo
        return np.stack(rows) if rows else np.zeros((0, len(self._pos)), dtype=np.int64)

    def auc(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(per_group (b, G), overall (b,))`` ROC AUC of each row of ``counts`` ``(b, n)``.

        ``counts`` are non-negative integers (any integer dtype) in :attr:`layout` order;
        NaN where a group (or all rows) has no positive or no negative weight.
        """
        w = np.atleast_2d(np.asarray(counts))
        if not np.issubdtype(w.dtype, np.integer):
            raise TypeError(f"counts must be integers, got {w.dtype}")
        top = 255 if w.dtype.itemsize == 1 else int(w.max(initial=0))
        acc = np.int32 if 2 * self.n * top < 2**31 else np.int64  # twice a cumulative count fits
        c = self._scratch("c", (w.shape[0], self.n + 1), acc)  # reused: fresh pages cost page faults
        c[:, 0] = 0
        np.cumsum(w, axis=1, dtype=acc, out=c[:, 1:])
        base = np.take(c, self.group_starts, axis=1).astype(np.int64)
        neg_end = np.take(c, self._neg_end, axis=1).astype(np.int64)
        neg = neg_end - base
        pos = np.take(c, self._end, axis=1) - neg_end
        rank = np.take(c, self._lo, axis=1, out=self._scratch("rank", (w.shape[0], len(self._lo)), acc))
        if self._ties:
            rank += np.take(c, self._hi, axis=1)
        else:
            rank *= 2
        wpos = np.concatenate([w[:, a:b] for a, b in zip(self._neg_end, self._end, strict=True)], axis=1)
        num = _segment_sums(np.multiply(rank, wpos, dtype=np.int64), self._pos_starts, self._n_pos)
        num -= 2 * base * pos
        per_group = _ratio(num.astype(np.float64), (2 * pos * neg).astype(np.float64))
        if self._cross is None:
            return per_group, self._overall(w, acc)
        # each positive read C at its rank in every other group h; C[start_h] comes off once per read
        fits = 2 * len(self._cross) * self.n * top < 2**31
        cross = self._scratch("cross", (w.shape[0], len(self._pos)), acc if fits else np.int64)  # (b, n_pos)
        cross[:] = 0
        read = self._scratch("read", (w.shape[0], len(self._pos)), acc)
        for row in self._cross:
            cross += np.take(c, row, axis=1, out=read)
        if not self._cross_ties:
            cross *= 2
        others = base.sum(axis=1, keepdims=True) - base
        num_all = (
            num.sum(axis=1)
            + np.einsum("ij,ij->i", cross, wpos, dtype=np.int64)
            - 2 * (others * pos).sum(axis=1)
        )
        den = 2 * pos.sum(axis=1) * neg.sum(axis=1)
        return per_group, _ratio(num_all.astype(np.float64), den.astype(np.float64))

    def _overall(self, w: np.ndarray, acc: type) -> np.ndarray:
        ss = self.overall
        ordered = np.take(w, ss.layout, axis=1)
        c = np.zeros((w.shape[0], ss.n_neg + 1), dtype=acc)
        np.cumsum(ordered[:, : ss.n_neg], axis=1, dtype=acc, out=c[:, 1:])
        rank = np.take(c, ss.lo, axis=1)
        if self._all_ties:
            rank += np.take(c, ss.hi, axis=1)
        else:
            rank *= 2
        wpos = ordered[:, ss.n_neg :]
        num = np.einsum("ij,ij->i", rank, wpos, dtype=np.int64)
        den = 2 * wpos.sum(axis=1, dtype=np.int64) * c[:, -1].astype(np.int64)
        return _ratio(num.astype(np.float64), den.astype(np.float64))
