"""Variance over training seeds: an arm trained ``repeats: N`` times, and what the repeats add.

Each arm plan runs once per repeat (:class:`Repeat`); repeat 0 is the run an audit without
repeats makes (same seed, same files, same fingerprint), repeat ``k >= 1`` is seeded by
:func:`fairaudit.stats.seeds.repeat_seed` and stored in its own arm file (``<index>_<name>.r<k>``),
so ``--resume`` keeps every finished repeat.  Once every arm is done, the arm's reported results
are repeat 0's, each metric with an :class:`~fairaudit.results.OverSeeds` summary (mean, SD and an
interval including retraining variance, :mod:`fairaudit.stats.over_seeds`), and each paired
change from the reference arm (and from the arm ``compare_with`` names) likewise, over the
per-seed paired changes (arm repeat ``k`` against reference repeat ``k``, or the reference's only
run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fairaudit.audit.arm import ArmPlan
from fairaudit.results import ArmResult, MetricResult, OverSeeds
from fairaudit.spec.models import AuditSpec
from fairaudit.stats.over_seeds import summarise_seeds
from fairaudit.stats.seeds import repeat_seeds

if TYPE_CHECKING:
    from fairaudit.audit.state import RunState

Scores = dict[str, np.ndarray]
#: Attaches paired changes to a list of arm results given their test scores; returns warnings.
Pairing = Callable[[list[ArmResult], Scores], list[str]]


@dataclass(frozen=True)
class Repeat:
    """Repeat ``k`` of ``n`` of one arm, trained with ``seed``."""

    k: int
    n: int
    seed: int

    def fingerprint(self, base: dict[str, Any]) -> dict[str, Any]:
        """The arm's fingerprint for this repeat: repeat 0's is the arm's own (a run folder made
        without repeats resumes as it did); a later repeat adds its number and seed."""
        return base if self.k == 0 else {**base, "repeat": {"k": self.k, "seed": self.seed}}

    def describe(self) -> str:
        return f"repeat {self.k + 1}/{self.n} (seed {self.seed})"


def repeats_of(plan: ArmPlan, spec: AuditSpec) -> int:
    """How many times ``plan`` is trained: its own ``repeats``, else the spec's; given scores once."""
    if plan.kind == "predictions":
        return 1
    own = getattr(plan.component, "repeats", None)
    return int(own) if own is not None else int(spec.repeats)


def plan_repeats(plan: ArmPlan, spec: AuditSpec) -> list[Repeat]:
    """The repeats of ``plan``, repeat 0 first."""
    n = repeats_of(plan, spec)
    return [Repeat(k, n, s) for k, s in enumerate(repeat_seeds(spec.seed, plan.index, plan.name, n))]


@dataclass
class ArmRuns:
    """One plan's repeats as they finish: per repeat, its arm results and their test scores."""

    plan: ArmPlan
    repeats: list[Repeat]
    results: list[list[ArmResult]] = field(default_factory=list)
    scores: list[Scores] = field(default_factory=list)

    def add(self, results: list[ArmResult], scores: Scores) -> None:
        self.results.append(results)
        self.scores.append(scores)

    @property
    def seeds(self) -> list[int]:
        """Training seeds (none for given scores: nothing is trained)."""
        return [] if self.plan.kind == "predictions" else [r.seed for r in self.repeats]

    def first(self) -> tuple[list[ArmResult], Scores]:
        """Repeat 0's results (the arms the report shows), each told its seeds."""
        for r in self.results[0]:
            r.repeats, r.seeds = len(self.repeats), self.seeds
        return self.results[0], self.scores[0]


@contextlib.contextmanager
def repeat_scope(state: RunState, repeat: Repeat) -> Iterator[None]:
    """Run a later repeat (``k >= 1``) in the shared state without disturbing repeat 0's record:
    the run context's seed and ``repeat`` are the repeat's (plugins seeded from it draw anew, and
    so do plugins with a fixed ``random_state``: :meth:`~fairaudit.base.RunContext.training_seed`),
    the baseline model
    kept for counterfactual arms stays repeat 0's, the repeat's timings are kept as
    ``r<k>:<key>`` and a warning already given is not repeated.  Repeat 0 runs as is."""
    if repeat.k == 0:
        yield
        return
    context, baseline = state.context, state._baseline
    timings, n_warnings = dict(state.log.timings), len(state.log.warnings)
    state.context = dataclasses.replace(context, seed=repeat.seed, repeat=repeat.k)
    try:
        yield
    finally:
        state.context, state._baseline = context, baseline
        new = {k: v for k, v in state.log.timings.items() if k not in timings or timings[k] != v}
        state.log.timings.clear()
        state.log.timings.update(timings)
        state.log.timings.update({f"r{repeat.k}:{k}": v for k, v in new.items()})
        added = state.log.warnings[n_warnings:]
        del state.log.warnings[n_warnings:]
        for w in added:
            if w not in state.log.warnings:
                state.log.warnings.append(w)


# ---------------------------------------------------------------- after every arm is done
def attach_repeat_changes(runs: list[ArmRuns], reference: str, pairing: Pairing,
                          also: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Paired changes of every later repeat: arm repeat ``k`` against reference repeat ``k`` (the
    reference's repeat ``k mod N_ref``: its only run when it was trained once), filled into each
    repeat's ``versus_baseline`` (and ``versus``, for the arms named by ``compare_with``: ``also``
    holds their names, each likewise taken at its repeat ``k mod N``); returns the warnings not
    given already by repeat 0's pairing."""
    ref_runs = next((r for r in runs if r.results and any(a.name == reference for a in r.results[0])), None)
    if ref_runs is None:
        return []
    warnings: list[str] = []
    for k in range(1, max(len(r.results) for r in runs)):
        arms: list[ArmResult] = []
        scores: Scores = {}
        j = k % len(ref_runs.results)
        for r in runs:
            if r is ref_runs:  # a copy: the reference's own record is not the place for these changes
                arms += [a.model_copy(deep=True) for a in r.results[j]]
                scores.update(r.scores[j])
            elif k < len(r.results):
                arms += r.results[k]
                scores.update(r.scores[k])
            elif r.results and any(a.name in also for a in r.results[0]):  # a named reference trained fewer times
                arms += [a.model_copy(deep=True) for a in r.results[k % len(r.results)]]
                scores.update(r.scores[k % len(r.results)])
        if len(arms) > len(ref_runs.results[j]):
            warnings += [w for w in pairing(arms, scores) if w not in warnings]
    return warnings


def summarise_over_seeds(runs: list[ArmRuns], ci_level: float) -> list[str]:
    """Fill ``over_seeds`` of every metric and paired change of each arm trained more than once;
    returns a warning per repeat that failed (the summary is over the repeats that finished)."""
    warnings: list[str] = []
    for r in runs:
        if len(r.results) < 2:
            continue
        for i, shown in enumerate(r.results[0]):
            per_repeat = [rep[i] for rep in r.results if i < len(rep) and rep[i].name == shown.name]
            failed = [(rep, a) for rep, a in zip(r.repeats, per_repeat, strict=False) if a.status != "ok"]
            warnings += [f"arm {shown.name!r} {rep.describe()} failed: {a.error}; its figures over seeds use the "
                         "repeats that finished" for rep, a in failed]
            ok = [a for a in per_repeat if a.status == "ok"]
            if shown.status != "ok" or len(ok) < 2:
                continue
            _summarise(shown.metrics, [a.metrics for a in ok], ci_level, _metric_key)
            _summarise(shown.versus_baseline, [a.versus_baseline for a in ok], ci_level, _change_key)
            for other, found in shown.versus.items():
                _summarise(found, [a.versus.get(other, []) for a in ok], ci_level, _change_key)
    return warnings


def _metric_key(m: MetricResult) -> tuple[Any, ...]:
    # not the label: it may name what varies by seed (e.g. the strongest attacker of a probe family)
    return (m.plugin, m.metric, m.attribute, m.role, m.variant)


def _change_key(m: MetricResult) -> tuple[Any, ...]:
    return (m.plugin, m.metric, m.attribute, m.derived_from, m.role)


def _summarise(shown: list[MetricResult], repeats: list[list[MetricResult]], ci_level: float,
               key: Callable[[MetricResult], tuple[Any, ...]]) -> None:
    """``over_seeds`` of each result in ``shown`` (repeat 0's) that every repeat has, finite."""
    indexed = [_by_key(results, key) for results in repeats]
    for occurrence, m in _by_key(shown, key).items():
        if m.role == "curve":
            continue
        matched = [idx.get(occurrence) for idx in indexed]
        if any(x is None or x.status != "ok" or not _finite(x.value) for x in matched):
            continue
        found = [x for x in matched if x is not None]
        summary = summarise_seeds([float(x.value) for x in found], [x.ci_low for x in found],  # type: ignore[arg-type]
                                  [x.ci_high for x in found], ci_level=ci_level, support=_support(found))
        m.over_seeds = OverSeeds(n=summary.n, values=[float(x.value) for x in found],  # type: ignore[arg-type]
                                 mean=summary.mean, sd=summary.sd, ci_low=summary.ci_low, ci_high=summary.ci_high)


#: Roles whose values lie in [0, 1] when every seed's value and bounds do (an AUC, a rate, a probe
#: AUC, an unsigned gap); a signed variant or a change may be negative and is never clipped.
UNIT_ROLES = {"value", "worst_group", "probe", "gap"}


def _support(found: list[MetricResult]) -> tuple[float, float] | None:
    """(0, 1) for a result whose every seed lies in [0, 1] and whose role keeps it there."""
    first = found[0]
    if first.role not in UNIT_ROLES or first.variant:
        return None
    numbers = [v for x in found for v in (x.value, x.ci_low, x.ci_high) if v is not None]
    return (0.0, 1.0) if all(0.0 <= float(v) <= 1.0 for v in numbers) else None


def _by_key(results: list[MetricResult], key: Callable[[MetricResult], tuple[Any, ...]]
            ) -> dict[tuple[Any, ...], MetricResult]:
    """Results by (key, occurrence), so two results with the same key pair up in order."""
    out: dict[tuple[Any, ...], MetricResult] = {}
    seen: dict[tuple[Any, ...], int] = {}
    for m in results:
        k = key(m)
        seen[k] = seen.get(k, -1) + 1
        out[(*k, seen[k])] = m
    return out


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(float(value))
