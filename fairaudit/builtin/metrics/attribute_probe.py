"""``attribute_probe``: does a representation encode a protected attribute?"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from fairaudit.base import BaseMetric, MetricContext, MetricOutput
from fairaudit.builtin.metrics._common import estimated_result, not_applicable, num
from fairaudit.builtin.metrics._probing import Target, cap_rows, cross_val_predict, probe_targets, subsample
from fairaudit.results import MetricResult
from fairaudit.stats.bootstrap import make_rng
from fairaudit.stats.groups import patient_codes
from fairaudit.stats.probes import (
    bootstrap_macro_auc,
    bootstrap_regression,
    macro_auc,
    regression_errors,
)

ENCODING_NOTE = (
    "a high probe score shows that the representation encodes the attribute, not that "
    "the model uses it (Glocker et al., eBioMedicine 2023)"
)


class AttributeProbe(BaseMetric):
    """Cross-validated linear and MLP probes predicting each attribute from the representation.

    Folds are grouped by patient (and stratified by class).  Categorical attributes give the
    probe's ROC AUC (one-vs-rest macro average for more than two classes); continuous ones
    (``continuous_attributes``, e.g. age in years from ``extras``, or a numeric attribute with
    more than ``max_classes`` values) give MAE and R².  Each value has a patient-level bootstrap
    CI on the out-of-fold predictions and a chance baseline: the same cross-validation with the
    attribute shuffled across rows.

    Parameters
    ----------
    probes:
        ``"linear"`` (standardised logistic / ridge regression) and/or ``"mlp"``.
    cv_folds:
        Folds of the cross-validation (classes with fewer rows are left out, with a note).
    continuous_attributes:
        Attributes probed by regression when present (in ``sensitive`` or ``extras``).
    mlp_hidden, mlp_max_iter, mlp_alpha, C:
        Probe capacity and regularisation (a strong L2 penalty ``mlp_alpha`` suits the few
        hundred rows of a typical test split).
    max_samples:
        Probe at most this many rows (whole patients drawn at random), for speed.
    max_rows:
        Read at most this many rows of the representation into memory: larger (e.g.
        memory-mapped) representations are subsampled first, at random (seeded) and stratified
        by the audited attributes (each group keeps its share, and at least 100 rows); the
        result notes say so.  ``None`` reads every row.
    max_classes:
        A numeric attribute with more distinct values is treated as continuous.
    shuffled_baseline:
        Also run the probe on shuffled labels (the chance level actually reached).
    max_dims:
        The MLP probe sees the top ``max_dims`` principal components of wider representations
        (PCA fitted within each training fold), for speed; ``None`` keeps every dimension.
    """

    name: ClassVar[str] = "attribute_probe"
    description: ClassVar[str] = (
        "Cross-validated linear/MLP probes of protected attributes in a representation"
    )
    requires: ClassVar[frozenset[str]] = frozenset({"features"})

    def __init__(
        self,
        probes: list[Literal["linear", "mlp"]] = ["linear", "mlp"],  # noqa: B006 - stored only
        cv_folds: int = 5,
        continuous_attributes: list[str] = ["age"],  # noqa: B006
        mlp_hidden: list[int] = [64],  # noqa: B006
        mlp_max_iter: int = 150,
        mlp_alpha: float = 1.0,
        C: float = 1.0,
        max_samples: int | None = 20000,
        max_classes: int = 20,
        shuffled_baseline: bool = True,
        max_dims: int | None = 256,
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
                "probes": ["mlp"],
                "cv_folds": 3,
                "mlp_hidden": [16],
                "mlp_max_iter": 50,
                "shuffled_baseline": False,
            },
        ]

    def _probe_kw(self) -> dict[str, object]:
        return {
            "hidden": list(self.mlp_hidden),
            "max_iter": self.mlp_max_iter,
            "C": self.C,
            "alpha": self.mlp_alpha,
            "max_dims": self.max_dims,
        }

    def outputs(self) -> list[MetricOutput]:
        return [MetricOutput("attribute_probe_auc", "probe", headline=True),
                MetricOutput("attribute_probe_mae", "probe"), MetricOutput("attribute_probe_r2", "probe")]

    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        if ctx.features is None:
            return [
                not_applicable("attribute_probe_auc", self.name, None, "no representation to probe")
            ]
        ctx, cap_notes = cap_rows(ctx, self.max_rows, self.name)
        X = np.asarray(ctx.features, dtype=np.float64).reshape(len(ctx.features), -1)
        if not np.all(np.isfinite(X)):
            raise ValueError("attribute_probe: the representation contains NaN/inf values")
        patients = patient_codes(ctx.patient_ids, len(X))
        targets = probe_targets(
            ctx, list(self.continuous_attributes), self.max_classes, self.cv_folds, n=len(X)
        )
        results: list[MetricResult] = []
        for target in targets:
            for kind in self.probes:
                results += self._probe(ctx, X, patients, target, kind)
        if not results:
            results.append(
                not_applicable(
                    "attribute_probe_auc",
                    self.name,
                    None,
                    "no attribute with at least two classes to probe",
                )
            )
        for result in results:
            result.notes.extend(cap_notes)
        return results

    def _probe(
        self, ctx: MetricContext, X: np.ndarray, patients: np.ndarray, target: Target, kind: str
    ) -> list[MetricResult]:
        st = ctx.stats
        rng = make_rng(st.seed, "attribute_probe", target.attribute, kind)
        sel = subsample(np.arange(len(target.rows)), patients[target.rows], self.max_samples, rng)
        rows = target.rows[sel]
        values = target.values[sel]
        notes = [
            *target.notes,
            ENCODING_NOTE,
            f"{self.cv_folds}-fold cross-validation grouped by patient",
        ]
        if len(sel) < len(target.rows):
            notes.append(f"probed on a random subset of {len(sel)} rows (max_samples)")
        k = len(target.classes)
        seed = int(rng.integers(2**31 - 1))
        oof = cross_val_predict(
            kind,
            X[rows],
            values,
            target.task,
            k,
            patients[rows],
            folds=self.cv_folds,
            seed=seed,
            **self._probe_kw(),
        )
        shuffled_oof = None
        if self.shuffled_baseline:
            shuffled = rng.permutation(values)
            shuffled_oof = cross_val_predict(
                kind,
                X[rows],
                shuffled,
                target.task,
                k,
                patients[rows],
                folds=self.cv_folds,
                seed=seed,
                **self._probe_kw(),
            )
        base = {"probe": kind, "task": target.task, "cv_folds": self.cv_folds, "n": len(rows)}
        boot_kw = {
            "patient_ids": patients[rows],
            "n_boot": st.n_boot,
            "ci_level": st.ci_level,
            "seed": make_rng(st.seed, "attribute_probe_boot", target.attribute, kind),
        }
        if target.task == "regression":
            mae, r2 = bootstrap_regression(values, oof, **boot_kw)  # type: ignore[arg-type]
            sh_mae = sh_r2 = None
            if shuffled_oof is not None:
                m, r = regression_errors(shuffled, shuffled_oof)
                sh_mae, sh_r2 = num(m[0]), num(r[0])
            label = f"{kind} probe of {target.attribute}"
            return [
                estimated_result(
                    mae,
                    metric="attribute_probe_mae",
                    role="probe",
                    plugin=self.name,
                    attribute=target.attribute,
                    label=f"{label}: mean absolute error",
                    higher_is_better=True,
                    notes=notes,
                    details={**base, "shuffled_mae": sh_mae},
                ),
                estimated_result(
                    r2,
                    metric="attribute_probe_r2",
                    role="probe",
                    plugin=self.name,
                    attribute=target.attribute,
                    label=f"{label}: R²",
                    higher_is_better=False,
                    notes=notes,
                    details={**base, "shuffled_r2": sh_r2},
                ),
            ]
        auc = bootstrap_macro_auc(values, oof, **boot_kw)  # type: ignore[arg-type]
        shuffled_auc = num(macro_auc(shuffled, shuffled_oof)) if shuffled_oof is not None else None
        what = "ROC AUC" if target.task == "binary" else "one-vs-rest macro ROC AUC"
        return [
            estimated_result(
                auc,
                metric="attribute_probe_auc",
                role="probe",
                headline=True,
                plugin=self.name,
                attribute=target.attribute,
                label=f"{kind} probe of {target.attribute}: {what}",
                higher_is_better=False,
                notes=notes,
                details={**base, "shuffled_auc": shuffled_auc, "classes": target.classes},
            )
        ]
