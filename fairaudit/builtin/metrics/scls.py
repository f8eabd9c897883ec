"""``scls``: spurious-correlation latching score from (image, counterfactual) pairs.

SCLS-like (METHODS.md §3.1; the exact formula of Kumar et al., FAIMI 2023, is unconfirmed).
Definition (v2): among counterfactual pairs whose edit the artefact oracle *confirms* (the
artefact was really added or removed), the fraction whose decision flips,
``P(decision flips | artefact edit confirmed)``.  A classifier that latches onto the artefact
scores near 1; one that ignores it near 0.  On oracle counterfactuals every device edit is
confirmed and SCLS equals ``cf_sensitivity_device``; on a generator's edits, failed edits drop
out instead of diluting the rate.

The first version (METHODS.md's proposal) was the reverse conditional, ``P(artefact flipped |
decision flipped)``: 1.0 on any device-only set as soon as one decision flips, and pooled over
factors the share of device flips among all flips, which moves with the disease flips.  On a
graded-shortcut ladder (:mod:`fairaudit.testing.shortcut_ladder`, ``benchmarks/bench_scls.py``)
v2 ranks classifiers as their true reliance does (logistic and MLP ladders, 3 seeds each):
Spearman 1.00 on oracle edits, >= 0.98 on failed / faded / noisy edits and >= 0.99 on an
independent device painter; v1 on the device set was constant 1.0 or rho -0.7 to 0.9.

Role and limits: with oracle counterfactuals ``cf_sensitivity_<factor>`` is the headline
measure of reliance and SCLS adds nothing; SCLS is for a generator's edits.  It counts only
edits the artefact oracle confirms, so it needs a trustworthy artefact detector, and it measures
reliance on the artefact *as the generator draws it*: an edited device unlike the natural one
under-estimates reliance (mean absolute error 0.13-0.22 for the painter on the ladder).  A
generator's set that also changes other factors (a sex edit that adds a device) counts where
the artefact changed: select the artefact's sets with ``factors``.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import numpy as np
import pydantic
from pydantic import ConfigDict

from fairaudit.base import BaseMetric, MetricContext, MetricOutput
from fairaudit.builtin.metrics._common import attribute_sets, not_applicable, num
from fairaudit.results import GroupValue, MetricResult
from fairaudit.stats.bootstrap import make_rng, percentile_ci
from fairaudit.stats.confusion import check_scores
from fairaudit.stats.groups import encode_groups, patient_codes
from fairaudit.stats.resample import bootstrap_key_counts, make_design

DEFINITION = "SCLS-like v2: P(decision flips | artefact edit confirmed by the oracle) (METHODS.md §3.1)"
NOTE = (
    "SCLS-like (METHODS.md §3.1; the paper's exact formula is unconfirmed): among counterfactual "
    "pairs whose artefact edit the artefact oracle confirms, the fraction whose decision flips; "
    "1 = the decision follows the artefact, 0 = it ignores it (on oracle counterfactuals it equals "
    "cf_sensitivity_<artefact factor>)"
)
#: Removed parameters -> what replaced them (a spec using the old name gets this message).
RENAMED = {"min_flipped": "min_edits (SCLS now counts confirmed artefact edits, not decision flips)"}


def _ratio(counts: np.ndarray) -> np.ndarray:
    """SCLS from cell counts ``(..., 4)`` with cells ``2 * decision_flip + artefact_flip``:
    decision flips among the confirmed artefact edits."""
    den = counts[..., 1] + counts[..., 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, counts[..., 3] / np.where(den > 0, den, 1), np.nan)


def _control(counts: np.ndarray) -> float | None:
    """Decision flip rate of the pairs whose artefact did not change (failed edits, other
    factors): what the edit does to decisions besides the artefact."""
    den = counts[..., 0].sum() + counts[..., 2].sum()
    return num(counts[..., 2].sum() / den) if den > 0 else None


def _check_renamed(params: dict[str, Any]) -> None:
    old = sorted(set(params) & set(RENAMED))
    if old:
        raise ValueError("scls: " + "; ".join(f"parameter {k!r} was renamed {RENAMED[k]}" for k in old))


class SCLSParams(pydantic.BaseModel):
    """``scls`` parameters; an old parameter name fails with the name that replaced it."""

    model_config = ConfigDict(extra="forbid")
    factors: list[str] | None = None
    min_edits: int = 5

    @pydantic.model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _check_renamed(data)
        return data


class _Pairs(NamedTuple):
    """Every (original, counterfactual) pair, pooled over the sets: the original's row, the
    pair's cell (``2 * decision_flip + artefact_flip``) and the original's patient code."""

    row: np.ndarray
    cell: np.ndarray
    patients: np.ndarray


def _artefact(ctx: MetricContext, images: np.ndarray) -> np.ndarray:
    """The artefact oracle's presence flag per image."""
    return np.asarray(ctx.artefact_oracle(images)).reshape(-1).astype(bool)


def _paired_sets(sets: dict[str, np.ndarray], n: int, notes: list[str]) -> dict[str, np.ndarray]:
    """The counterfactual sets with one image per original (``n``); each other one is skipped
    with a line in ``notes``."""
    usable = {}
    for key, cf in sets.items():
        if len(cf) != n:
            notes.append(
                f"counterfactual set {key!r} has {len(cf)} images for {n} originals; skipped"
            )
            continue
        usable[key] = np.asarray(cf)
    return usable


def _pair_cells(
    ctx: MetricContext, d0: np.ndarray, a0: np.ndarray, usable: dict[str, np.ndarray], n: int
) -> tuple[np.ndarray, np.ndarray, dict[str, dict]]:
    """Original row and cell (``2 * decision_flip + artefact_flip``) of every pair, pooled over
    the ``usable`` sets, from the originals' decisions ``d0`` and artefact flags ``a0``; and each
    set's own pair count, flip count and SCLS."""
    rows, cells, per_factor = [], [], {}
    for key, cf in usable.items():
        d1 = check_scores(ctx.predict_fn(cf), n) >= ctx.threshold
        a1 = _artefact(ctx, cf)
        flip, art = d0 != d1, a0 != a1
        rows.append(np.arange(n))
        cells.append(2 * flip.astype(np.int64) + art.astype(np.int64))
        counts = np.bincount(cells[-1], minlength=4)
        per_factor[key] = {
            "n_pairs": n,
            "n_confirmed": int(art.sum()),
            "n_flipped": int(flip.sum()),
            "n_latched": int(counts[3]),
            "scls": num(_ratio(counts)),
            "flip_rate_unconfirmed": _control(counts),
        }
    return np.concatenate(rows), np.concatenate(cells), per_factor


class SCLS(BaseMetric):
    """Spurious-correlation latching score per group, from counterfactual pairs (SCLS-like).

    SCLS = ``P(decision flips | artefact edit confirmed)``: of the pairs whose artefact verdict
    (``artefact_oracle``) differs between original and counterfactual, the share whose decision
    differs too.  Pairs whose edit failed (artefact unchanged) are left out; their decision flip
    rate is reported as ``details["flip_rate_unconfirmed"]`` (a generator's collateral effect).
    On oracle counterfactuals SCLS equals ``cf_sensitivity_device``, the headline shortcut
    measure; SCLS is the version that also works on a generator's imperfect edits.

    Every counterfactual set in the context (``counterfactuals``; restricted to ``factors``
    when given, matching a key exactly or after its ``"oracle:"``-style prefix) is paired row by
    row with the test images.  Scores come from ``predict_fn`` at the decision threshold, artefact
    presence from ``artefact_oracle``.  Values per group of every attribute, plus a breakdown by
    (label, artefact) cell (the "aligned" and "minority" groups of the DeCoDEx setting), with
    patient-level bootstrap CIs.

    Parameters
    ----------
    factors:
        Counterfactual sets to use (default: all).  Among the selected sets, the arm's
        generated ones are used when it has any (its ``oracle:`` sets are then only the
        reference), else the oracle sets; pooled, and each reported in ``details``.
    min_edits:
        Groups with fewer confirmed artefact edits are too small to judge (replaces
        ``min_flipped``, which now fails with a message naming this one).
    """

    name: ClassVar[str] = "scls"
    description: ClassVar[str] = (
        "Spurious-correlation latching score: decision flips per artefact edit confirmed by the "
        "artefact oracle (SCLS-like)"
    )
    requires: ClassVar[frozenset[str]] = frozenset({"counterfactuals"})

    Params: ClassVar[type[pydantic.BaseModel]] = SCLSParams

    def __init__(self, factors: list[str] | None = None, min_edits: int = 5, **removed: Any):
        _check_renamed(removed)
        if removed:
            raise TypeError(f"scls: unexpected parameter(s) {sorted(removed)}")
        self.factors = factors
        self.min_edits = min_edits

    def outputs(self) -> list[MetricOutput]:
        return [MetricOutput("scls", "value", higher_is_better=False)]

    @classmethod
    def get_test_params(cls) -> list[dict[str, object]]:
        return [{}, {"min_edits": 1}]

    def _selected(self, ctx: MetricContext) -> dict[str, np.ndarray]:
        """The sets named by ``factors``; by default the generator's own sets when the arm has
        any (its ``oracle:`` sets are then only the reference), else every oracle set."""
        sets = ctx.counterfactuals.labelled()
        if self.factors is not None:
            wanted = set(self.factors)
            sets = {k: v for k, v in sets.items() if k in wanted or k.split(":")[-1] in wanted}
        generated = {k: v for k, v in sets.items() if not k.startswith("oracle:")}
        return generated or sets

    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        if ctx.images is None or ctx.predict_fn is None or ctx.artefact_oracle is None:
            return [
                not_applicable(
                    "scls",
                    self.name,
                    None,
                    "needs test images, a classifier (predict_fn) and an artefact oracle",
                )
            ]
        images = np.asarray(ctx.images)
        n = len(images)
        notes: list[str] = [NOTE]
        usable = _paired_sets(self._selected(ctx), n, notes)
        if not usable:
            return [
                not_applicable(
                    "scls", self.name, None, "no counterfactual set pairs with the test images"
                )
            ]
        d0 = check_scores(ctx.predict_fn(images), n) >= ctx.threshold
        a0 = _artefact(ctx, images)
        row, cell, per_factor = _pair_cells(ctx, d0, a0, usable, n)
        pairs = _Pairs(row, cell, patient_codes(ctx.patient_ids, n)[row])
        counts = np.bincount(cell, minlength=4)
        details = {
            "n_confirmed": int(counts[1] + counts[3]),
            "n_latched": int(counts[3]),
            "n_flipped": int(counts[2] + counts[3]),
            "n_pairs": len(cell),
            "flip_rate_unconfirmed": _control(counts),
            "definition": DEFINITION,
            "factors": per_factor,
            "by_label_artefact": self._by_label_artefact(ctx, a0, pairs),
        }
        return [
            self._result(ctx, cols, pairs, n, notes, details)
            for cols in attribute_sets(ctx) or [None]  # no attribute: one overall result
        ]

    def _by_label_artefact(
        self, ctx: MetricContext, a0: np.ndarray, pairs: _Pairs
    ) -> dict[str, dict]:
        """SCLS per (label, artefact in the original) cell: the "aligned" and "minority" groups."""
        y = np.asarray(ctx.y_true).reshape(-1)
        label_art = np.array(
            [f"y={int(a)},artefact={int(b)}" for a, b in zip(y, a0, strict=True)], dtype=object
        )
        cell_groups = encode_groups(label_art, "label&artefact")
        codes = cell_groups.codes[pairs.row]
        _, gvs = self._by_group(
            ctx, codes, cell_groups.names, pairs.cell, pairs.patients, "label&artefact"
        )
        return {
            gv.group: {
                "n_confirmed": gv.n,
                "n_latched": gv.n_pos,
                "scls": gv.value,
                "ci_low": gv.ci_low,
                "ci_high": gv.ci_high,
            }
            for gv in gvs
        }

    def _result(
        self,
        ctx: MetricContext,
        cols: list[str] | None,
        pairs: _Pairs,
        n: int,
        notes: list[str],
        details: dict,
    ) -> MetricResult:
        """The SCLS of the groups of attribute(s) ``cols`` (``None``: one group of all rows)."""
        groups = (
            encode_groups(ctx.sensitive, cols)
            if cols is not None
            else encode_groups(np.zeros(n, dtype=np.int64), "all")
        )
        overall, gvs = self._by_group(
            ctx, groups.codes[pairs.row], groups.names, pairs.cell, pairs.patients, groups.attribute
        )
        status = "ok" if details["n_confirmed"] >= self.min_edits else "too_small"
        extra = (
            []
            if status == "ok"
            else [
                f"only {details['n_confirmed']} pair(s) with an artefact edit confirmed by the "
                f"oracle (< min_edits={self.min_edits})"
            ]
        )
        return MetricResult(
            metric="scls",
            plugin=self.name,
            attribute=groups.attribute if cols is not None else None,
            label="SCLS-like latching: decision flips per confirmed artefact edit",
            value=overall[0] if status == "ok" else None,
            ci_low=overall[1] if status == "ok" else None,
            ci_high=overall[2] if status == "ok" else None,
            higher_is_better=False,
            status=status,  # type: ignore[arg-type]
            per_group=gvs,
            notes=[*notes, f"decision: score >= {ctx.threshold:g}", *extra],
            details=details,
        )

    def _by_group(
        self,
        ctx: MetricContext,
        codes: np.ndarray,
        names: list[str],
        cell: np.ndarray,
        patients: np.ndarray,
        attribute: str,
    ) -> tuple[tuple[float | None, ...], list]:
        st = ctx.stats
        keep = codes >= 0
        n_groups = len(names)
        keys = codes[keep] * 4 + cell[keep]
        counts = np.bincount(keys, minlength=4 * n_groups).reshape(n_groups, 4)
        design = make_design(patients[keep], codes[keep], stratified=True)
        reps = bootstrap_key_counts(
            keys, 4 * n_groups, design, st.n_boot, make_rng(st.seed, "scls", attribute)
        ).reshape(-1, n_groups, 4)
        per = _ratio(counts)
        low, high = percentile_ci(_ratio(reps), st.ci_level)
        o_low, o_high = percentile_ci(_ratio(reps.sum(1)), st.ci_level)
        overall = (num(_ratio(counts.sum(0))), num(o_low), num(o_high))
        confirmed = counts[:, 1] + counts[:, 3]
        gvs = [
            GroupValue(
                attribute=attribute,
                group=name,
                n=int(confirmed[i]),
                n_pos=int(counts[i, 3]),
                value=num(per[i]),
                ci_low=num(low[i]),
                ci_high=num(high[i]),
                too_small=bool(confirmed[i] < self.min_edits),
            )
            for i, name in enumerate(names)
        ]
        return overall, gvs
