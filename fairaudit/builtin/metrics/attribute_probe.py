"""``attribute_probe``: does a representation encode a protected attribute?"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from fairaudit.base import BaseMetric, MetricContext, MetricOutput
from fairaudit.builtin.metrics._common import num
from fairaudit.builtin.metrics._probe_family import fit_family, make_folds
from fairaudit.builtin.metrics._probing import (
    PROBE_OUTPUTS,
    Target,
    cap_rows,
    family_settings,
    name_representation,
    probe_missing,
    probe_result,
    probe_targets,
    stratified_rows,
)
from fairaudit.results import MetricResult
from fairaudit.stats.bootstrap import make_rng
from fairaudit.stats.groups import patient_codes
from fairaudit.stats.probes import bootstrap_family_auc, bootstrap_family_regression, macro_auc, regression_errors

ENCODING_NOTE = (
    "a high probe score shows that the representation encodes the attribute, not that "
    "the model uses it (Glocker et al., eBioMedicine 2023)"
)
FAMILY_NOTE = (
    "the value is the strongest probe of the family ({members}); its interval is the bootstrap "
    "interval of the maximum over the family (the choice of the strongest included), and the "
    "shuffled baseline is the strongest probe on shuffled labels"
)


class AttributeProbe(BaseMetric):
    """Cross-validated probe family predicting each attribute from the representation.

    The family is a linear model on every principal component of the standardised
    representation, a one-hidden-layer MLP (L2 penalty chosen on an inner split, early
    stopping) and gradient-boosted trees (early stopping) on the top ``max_dims`` components;
    the result is the *strongest* member, with every member's score in ``details["family"]``.
    Folds are grouped by patient and stratified by the attributes (the same folds for every
    attribute); inner splits are taken from the training folds only.  Categorical attributes
    give ROC AUC (one-vs-rest macro average for more than two classes); continuous ones
    (``continuous_attributes``, e.g. age in years from ``extras``, or a numeric attribute with
    more than ``max_classes`` values) give MAE and R².  Each value has a patient-level
    bootstrap CI and a chance baseline: the same family on the attribute shuffled across rows.

    Parameters
    ----------
    probes:
        Family members: ``"linear"`` (logistic / ridge), ``"mlp"``, ``"boosting"``.
    cv_folds:
        Folds of the cross-validation (classes with fewer rows are left out, with a note).
    continuous_attributes:
        Attributes probed by regression when present (in ``sensitive`` or ``extras``).
    mlp_hidden:
        Width of the MLP's hidden layer (one layer, e.g. ``[32]``).
    mlp_max_iter:
        Most epochs of the MLP (early stopping usually ends it sooner).
    mlp_alpha, C:
        L2 penalty of the MLP (scikit-learn's ``alpha``) and inverse penalty of the linear model
        (``C``); a list is a grid, chosen per fold on the inner split.
    max_samples:
        Probe at most this many rows, drawn at random (seeded) and stratified by the
        attributes; the result says how many rows it had (``details["n_rows"]``).
    max_rows:
        Read at most this many rows of the representation into memory: larger (e.g.
        memory-mapped) representations are subsampled first, at random (seeded) and stratified
        by the audited attributes (each group keeps its share, and at least 100 rows); the
        result notes say so.  ``None`` reads every row.
    max_classes:
        A numeric attribute with more distinct values is treated as continuous.
    shuffled_baseline:
        Also run the family on shuffled labels (the chance level actually reached).
    max_dims:
        Principal components the MLP and the trees see; ``None`` gives them every component.
    """

    name: ClassVar[str] = "attribute_probe"
    description: ClassVar[str] = (
        "Cross-validated probe family (linear, MLP, boosted trees) of protected attributes in a representation"
    )
    requires: ClassVar[frozenset[str]] = frozenset({"features"})

    def __init__(
        self,
        probes: list[Literal["linear", "mlp", "boosting"]] = ["linear", "mlp", "boosting"],  # noqa: B006
        cv_folds: int = 5,
        continuous_attributes: list[str] = ["age"],  # noqa: B006
        mlp_hidden: list[int] = [32],  # noqa: B006
        mlp_max_iter: int = 150,
        mlp_alpha: float | list[float] = [1e-3, 1.0],  # noqa: B006
        C: float | list[float] = 1.0,
        max_samples: int | None = 20000,
        max_classes: int = 20,
        shuffled_baseline: bool = True,
        max_dims: int | None = 64,
        max_rows: int | None = 50_000,
    ):
        self.probes = probes
        self.cv_folds = cv_folds
        self.continuous_attributes = continuous_attributes
        self.mlp_hidden = mlp_hidden
        self.mlp_max_iter = mlp_max_iter
        self.mlp_alpha = mlp_alpha
        self.C = C
        self.max_samples = max_samples
        self.max_classes = max_classes
        self.shuffled_baseline = shuffled_baseline
        self.max_dims = max_dims
        self.max_rows = max_rows

    @classmethod
    def get_test_params(cls) -> list[dict[str, object]]:
        return [
            {"probes": ["linear"], "cv_folds": 3},
            {
                "probes": ["mlp", "boosting"],
                "cv_folds": 3,
                "mlp_hidden": [16],
                "mlp_max_iter": 30,
                "shuffled_baseline": False,
            },
        ]

    def outputs(self) -> list[MetricOutput]:
        return [PROBE_OUTPUTS[name] for name in ['attribute_probe_auc', 'attribute_probe_mae', 'attribute_probe_r2']]

    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        if ctx.features is None:
            return [self._missing("no representation to probe")]
        ctx, cap_notes = cap_rows(ctx, self.max_rows, self.name)
        X = np.asarray(ctx.features, dtype=np.float32).reshape(len(ctx.features), -1)
        if not np.all(np.isfinite(X)):
            raise ValueError("attribute_probe: the representation contains NaN/inf values")
        patients = patient_codes(ctx.patient_ids, len(X))
        targets = probe_targets(
            ctx, list(self.continuous_attributes), self.max_classes, self.cv_folds, n=len(X)
        )
        if not targets:
            return [self._missing("no attribute with at least two classes to probe")]
        rng = make_rng(ctx.stats.seed, "attribute_probe")
        rows, row_note = self._rows(targets, len(X), rng)
        if len(np.unique(patients[rows])) < self.cv_folds:
            return [self._missing(f"fewer patients than the {self.cv_folds} folds")]
        results: list[MetricResult] = []
        for result in self._probe(ctx, X[rows], patients[rows], rows, targets, rng):
            result.notes.extend([*([row_note] if row_note else []), *cap_notes])
            results.append(result)
        return name_representation(results, ctx)

    def _missing(self, why: str) -> MetricResult:
        return probe_missing("attribute_probe_auc", self.name, None, why)

    def _rows(self, targets: list[Target], n: int, rng: np.random.Generator) -> tuple[np.ndarray, str | None]:
        """Probe rows: at most ``max_samples``, stratified by the categorical attributes."""
        strata = _strata(targets, n)
        if self.max_samples is None or n <= self.max_samples:
            return np.arange(n), None
        rows = stratified_rows(strata, self.max_samples, rng)
        return rows, (f"probed on {len(rows)} of {n} rows drawn at random, stratified by the attributes "
                      f"(max_samples={self.max_samples})")

    def _probe(self, ctx: MetricContext, X: np.ndarray, patients: np.ndarray, rows: np.ndarray,
               targets: list[Target], rng: np.random.Generator) -> list[MetricResult]:
        n = len(rows)
        where = np.full(_n_rows(ctx), -1)
        where[rows] = np.arange(n)
        values, n_classes, shuffled = [], [], []
        for t in targets:
            v = np.full(n, np.nan)
            keep = where[t.rows] >= 0
            v[where[t.rows[keep]]] = t.values[keep]
            values.append(v)
            n_classes.append(1 if t.task == "regression" else len(t.classes))
        if self.shuffled_baseline:
            for v in values:
                s = v.copy()
                present = np.flatnonzero(~np.isnan(v))
                s[present] = rng.permutation(v[present])
                shuffled.append(s)
        seed = int(rng.integers(2**31 - 1))
        folds = make_folds(_strata(targets, _n_rows(ctx))[rows], patients, self.cv_folds, seed)
        settings = family_settings(self.name, list(self.probes), self.mlp_hidden, self.mlp_alpha, self.C,
                                   self.mlp_max_iter, self.max_dims, seed, ctx.context.device)
        preds, info = fit_family(X, values + shuffled, n_classes * (2 if shuffled else 1), folds, settings)
        out: list[MetricResult] = []
        for i, target in enumerate(targets):
            have = np.flatnonzero(~np.isnan(values[i]))
            member = {m: p[i][have] for m, p in preds.items()}
            chance = {m: p[len(targets) + i][have] for m, p in preds.items()} if shuffled else None
            sh = shuffled[i][have] if shuffled else None
            base: dict[str, Any] = {
                "task": target.task, "cv_folds": self.cv_folds, "n": len(have), "n_rows": len(have),
                "components": info["components"], "variance_kept": num(info["variance_kept"]),
            }
            kw = {"ctx": ctx, "target": target, "y": values[i][have], "patients": patients[have],
                  "member": member, "chance": chance, "shuffled": sh, "base": base}
            out += self._regression(**kw) if target.task == "regression" else self._classification(**kw)
        return out

    def _notes(self, target: Target) -> list[str]:
        members = ", ".join(m for m in ("linear", "mlp", "boosting") if m in self.probes)
        return [
            *target.notes,
            ENCODING_NOTE,
            f"{self.cv_folds}-fold cross-validation grouped by patient (stratified by the attributes)",
            FAMILY_NOTE.format(members=members),
        ]

    def _classification(self, ctx: MetricContext, target: Target, y: np.ndarray, patients: np.ndarray,
                        member: dict[str, np.ndarray], chance: dict[str, np.ndarray] | None,
                        shuffled: np.ndarray | None, base: dict[str, Any]) -> list[MetricResult]:
        st = ctx.stats
        codes = y.astype(np.int64)
        intervals, strongest = bootstrap_family_auc(
            codes, member, patient_ids=patients, n_boot=st.n_boot, ci_level=st.ci_level,
            seed=make_rng(st.seed, "attribute_probe_boot", target.attribute),
        )
        best = max(intervals, key=lambda m: intervals[m].value)
        shuffled_family = (
            {m: num(macro_auc(shuffled.astype(np.int64), p)) for m, p in chance.items()}  # type: ignore[union-attr]
            if chance is not None else None
        )
        what = "ROC AUC" if target.task == "binary" else "one-vs-rest macro ROC AUC"
        return [probe_result(
            strongest,
            metric="attribute_probe_auc",
            plugin=self.name,
            attribute=target.attribute,
            label=f"{best} probe of {target.attribute}: {what} (strongest of the family)",
            higher_is_better=False,
            notes=self._notes(target),
            details={
                **base, "probe": best, "classes": target.classes,
                "family": {m: num(v.value) for m, v in intervals.items()},
                "family_ci": {m: [num(v.ci_low), num(v.ci_high)] for m, v in intervals.items()},
                "shuffled_auc": _max(shuffled_family), "shuffled_family": shuffled_family,
            },
        )]

    def _regression(self, ctx: MetricContext, target: Target, y: np.ndarray, patients: np.ndarray,
                    member: dict[str, np.ndarray], chance: dict[str, np.ndarray] | None,
                    shuffled: np.ndarray | None, base: dict[str, Any]) -> list[MetricResult]:
        st = ctx.stats
        intervals, best, strongest = bootstrap_family_regression(
            y, member, patient_ids=patients, n_boot=st.n_boot, ci_level=st.ci_level,
            seed=make_rng(st.seed, "attribute_probe_boot", target.attribute),
        )
        sh_mae = sh_r2 = None
        if chance is not None and shuffled is not None:
            errors = {m: regression_errors(shuffled, p) for m, p in chance.items()}
            sh_r2 = _max({m: num(e[1][0]) for m, e in errors.items()})
            sh_mae = min((num(e[0][0]) for e in errors.values()), key=lambda v: np.inf if v is None else v)
        family = {m: num(v[1].value) for m, v in intervals.items()}
        label = f"{best} probe of {target.attribute}"
        details = {**base, "probe": best, "family": family}
        return [
            probe_result(
                intervals[best][0],
                metric="attribute_probe_mae",
                plugin=self.name,
                attribute=target.attribute,
                label=f"{label}: mean absolute error (strongest of the family by R²)",
                higher_is_better=True,
                notes=self._notes(target),
                details={**details, "family_mae": {m: num(v[0].value) for m, v in intervals.items()},
                         "shuffled_mae": sh_mae},
            ),
            probe_result(
                strongest,
                metric="attribute_probe_r2",
                plugin=self.name,
                attribute=target.attribute,
                label=f"{label}: R² (strongest of the family)",
                higher_is_better=False,
                notes=self._notes(target),
                details={**details, "shuffled_r2": sh_r2},
            ),
        ]


def _n_rows(ctx: MetricContext) -> int:
    """Rows of the (capped) representation."""
    return len(ctx.features)  # type: ignore[arg-type]


def _strata(targets: list[Target], n: int) -> np.ndarray:
    """One code per row: the intersection of the categorical targets (a missing value is a code)."""
    strata = np.zeros(n, dtype=np.int64)
    for t in targets:
        if t.task == "regression":
            continue
        codes = np.full(n, len(t.classes), dtype=np.int64)
        codes[t.rows] = t.values
        strata = strata * (len(t.classes) + 1) + codes
    return np.unique(strata, return_inverse=True)[1].reshape(-1)


def _max(values: dict[str, float | None] | None) -> float | None:
    found = [v for v in (values or {}).values() if v is not None]
    return max(found) if found else None
