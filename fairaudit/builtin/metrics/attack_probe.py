"""``attack_probe``: a stronger adversary than the probe, and the label-flip bias attack."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from fairaudit.base import BaseMetric, MetricContext, MetricOutput
from fairaudit.builtin.metrics._common import num
from fairaudit.builtin.metrics._probe_family import Folds, fit_family, make_folds
from fairaudit.builtin.metrics._probing import (
    PROBE_OUTPUTS,
    Target,
    cap_rows,
    family_settings,
    fit_predict,
    make_probe,
    name_representation,
    probe_missing,
    probe_result,
    probe_targets,
    subsample,
)
from fairaudit.builtin.metrics.attribute_probe import FAMILY_NOTE
from fairaudit.results import MetricResult
from fairaudit.stats import confusion as cm
from fairaudit.stats.bootstrap import bootstrap_confusion_counts, make_rng
from fairaudit.stats.groups import encode_groups, patient_codes
from fairaudit.stats.probes import bootstrap_family_auc, macro_auc

BIAS_ATTACK = (
    "label-flip bias attack (METHODS.md §1.6): labels of a random fraction of one group's "
    "training rows are flipped (0<->1), a logistic regression is refit on the representation, "
    "and fairlearn's equal_opportunity_difference (unsigned max − min TPR over groups) is "
    "measured on the true test labels"
)


class AttackProbe(BaseMetric):
    """An attacker with more capacity and more data than the probe, plus the bias-attack curve.

    **Attacker.**  For each categorical attribute, the probe family of ``attribute_probe``
    (``probes``: linear, MLP with its L2 penalty chosen and early stopping on a fifth of the
    training rows, gradient-boosted trees) is trained on the *whole training split* of the arm's
    representation (the debiased one for a debiaser arm), i.e. more data than a cross-validated
    probe on the test split, and scored on the test representation: the strongest attacker's
    ROC AUC (one-vs-rest macro for several classes) with a patient bootstrap CI of the maximum
    over the family, every attacker's AUC in ``details["family"]``, and the strongest AUC of
    the same family trained on shuffled labels.

    **Bias attack.**  For ``bias_attribute`` (default: the first attribute) and each group in
    ``flipped_groups`` (default: every group), flip the training labels of a fraction of that
    group's rows for each of ``fractions``, refit a classifier (``bias_model``) on the
    representation,
    and measure the equal-opportunity difference on the test split (threshold: the spec's
    decision threshold) with a bootstrap CI.  A representation that hides the attribute keeps
    the curve flat.

    Parameters
    ----------
    probes:
        Attackers: ``"linear"``, ``"mlp"``, ``"boosting"``.
    hidden, max_iter, alpha:
        Attacker MLP: hidden-layer width (one layer, ``[64]``), most epochs, and L2 penalty (a
        list is a grid chosen on the held-out fifth).
    max_train_samples:
        Train the attacker on at most this many rows (whole patients).
    bias_attack:
        Compute the label-flip curve (needs ``y_train``).
    bias_attribute, flipped_groups, fractions:
        Attribute, groups whose labels are flipped, and flip fractions.
    max_dims:
        The MLP and the trees see the top ``max_dims`` principal components (of the training and
        test rows together; no labels involved); ``None`` keeps every component.
    bias_model:
        Classifier refit on the poisoned labels: ``"linear"`` (logistic regression, as the
        original experiment) or ``"mlp"`` (the attacker's architecture).
    max_rows:
        Read at most this many rows of each of the train and test representations into
        memory: larger (e.g. memory-mapped) ones are subsampled first, at random (seeded) and
        stratified by the audited attributes; the result notes say so.  ``None`` reads all.
    """

    name: ClassVar[str] = "attack_probe"
    description: ClassVar[str] = "Adversarial attribute attacker and the label-flip bias attack"
    requires: ClassVar[frozenset[str]] = frozenset({"features"})

    def __init__(
        self,
        probes: list[Literal["linear", "mlp", "boosting"]] = ["linear", "mlp", "boosting"],  # noqa: B006
        hidden: list[int] = [64],  # noqa: B006 - stored only
        max_iter: int = 300,
        alpha: float | list[float] = [1e-3, 1.0],  # noqa: B006
        max_train_samples: int | None = 50000,
        shuffled_baseline: bool = True,
        bias_attack: bool = True,
        bias_attribute: str | None = None,
        flipped_groups: list[str] | None = None,
        fractions: list[float] = [0.0, 0.25, 0.5, 0.75, 1.0],  # noqa: B006
        bias_model: Literal["linear", "mlp"] = "linear",
        max_dims: int | None = 128,
        max_rows: int | None = 50_000,
    ):
        self.probes = probes
        self.hidden = hidden
        self.max_iter = max_iter
        self.alpha = alpha
        self.max_train_samples = max_train_samples
        self.shuffled_baseline = shuffled_baseline
        self.bias_attack = bias_attack
        self.bias_attribute = bias_attribute
        self.flipped_groups = flipped_groups
        self.fractions = fractions
        self.bias_model = bias_model
        self.max_dims = max_dims
        self.max_rows = max_rows

    @classmethod
    def get_test_params(cls) -> list[dict[str, object]]:
        return [
            {"hidden": [32], "max_iter": 60, "fractions": [0.0, 1.0]},
            {"probes": ["mlp", "boosting"], "hidden": [16], "max_iter": 30, "bias_attack": False,
             "shuffled_baseline": False},
        ]

    def outputs(self) -> list[MetricOutput]:
        return [PROBE_OUTPUTS[name] for name in ['attack_probe_auc', 'bias_attack_eod']]

    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        if ctx.features is None or ctx.features_train is None or ctx.sensitive_train is None:
            return [
                probe_missing(
                    "attack_probe_auc",
                    self.name,
                    None,
                    "needs the train and test representations and training attributes",
                )
            ]
        ctx, cap_notes = cap_rows(ctx, self.max_rows, self.name, train=True)
        X_test = np.asarray(ctx.features, dtype=np.float64).reshape(len(ctx.features), -1)
        X_train = np.asarray(ctx.features_train, dtype=np.float64).reshape(
            len(ctx.features_train), -1
        )
        if not (np.all(np.isfinite(X_test)) and np.all(np.isfinite(X_train))):
            raise ValueError("attack_probe: the representation contains NaN/inf values")
        results: list[MetricResult] = []
        train_targets = {
            t.attribute: t
            for t in probe_targets(
                ctx, [], max_classes=50, cv_folds=2, sensitive=ctx.sensitive_train, n=len(X_train)
            )
        }
        test_targets = {
            t.attribute: t
            for t in probe_targets(ctx, [], max_classes=50, cv_folds=1, n=len(X_test))
        }
        for attr, train in train_targets.items():
            if train.task == "regression" or attr not in test_targets:
                continue
            results += self._attack(ctx, X_train, X_test, train, test_targets[attr])
        if self.bias_attack:
            results += self._bias_attack(ctx, X_train, X_test)
        if not results:
            results.append(
                probe_missing("attack_probe_auc", self.name, None, "no categorical attribute")
            )
        for result in results:
            result.notes.extend(cap_notes)
        return name_representation(results, ctx)

    # ------------------------------------------------------------------ attacker
    def _attack(
        self,
        ctx: MetricContext,
        X_train: np.ndarray,
        X_test: np.ndarray,
        train: Target,
        test: Target,
    ) -> list[MetricResult]:
        st = ctx.stats
        rng = make_rng(st.seed, "attack_probe", train.attribute)
        classes = train.classes
        test_labels = [test.classes[c] for c in test.values]
        known = np.array([lab in classes for lab in test_labels])
        test_rows = test.rows[known]
        test_codes = np.array(
            [classes.index(lab) for lab, k in zip(test_labels, known, strict=True) if k]
        )
        if len(np.unique(test_codes)) < 2:
            return [
                probe_result(
                    metric="attack_probe_auc",
                    plugin=self.name,
                    attribute=train.attribute,
                    status="not_applicable",
                    notes=["fewer than two classes in the test split"],
                )
            ]
        pid_train = np.arange(len(X_train))
        sel = subsample(
            np.arange(len(train.rows)), pid_train[train.rows], self.max_train_samples, rng
        )
        rows, y_tr = train.rows[sel], train.values[sel]
        seed = int(rng.integers(2**31 - 1))
        settings = family_settings(self.name, list(self.probes), self.hidden, self.alpha, 1.0, self.max_iter,
                                   self.max_dims, seed, ctx.context.device)
        # one "fold": fit on the training split (early stopping on a fifth of it), score the test split
        X = np.concatenate([X_train[rows], X_test[test_rows]]).astype(np.float32)
        n_tr = len(rows)
        fit, check = make_folds(y_tr, np.arange(n_tr), 5, seed).outer[0]
        folds = Folds([(np.arange(n_tr), np.arange(n_tr, len(X)))], [(fit, check)])
        values = [np.concatenate([y_tr, np.full(len(test_rows), np.nan)]).astype(np.float64)]
        if self.shuffled_baseline:
            values.append(np.concatenate([rng.permutation(y_tr), np.full(len(test_rows), np.nan)]))
        preds, info = fit_family(X, values, [len(classes)] * len(values), folds, settings)
        patients = patient_codes(ctx.patient_ids, len(X_test))[test_rows]
        member = {m: p[0][n_tr:] for m, p in preds.items()}
        intervals, strongest = bootstrap_family_auc(
            test_codes,
            member,
            patient_ids=patients,
            n_boot=st.n_boot,
            ci_level=st.ci_level,
            seed=make_rng(st.seed, "attack_boot", train.attribute),
        )
        best = max(intervals, key=lambda m: intervals[m].value)
        shuffled_family = (
            {m: num(macro_auc(test_codes, p[1][n_tr:])) for m, p in preds.items()} if self.shuffled_baseline else None
        )
        found = [v for v in (shuffled_family or {}).values() if v is not None]
        what = "ROC AUC" if len(classes) == 2 else "one-vs-rest macro ROC AUC"
        return [
            probe_result(
                strongest,
                metric="attack_probe_auc",
                plugin=self.name,
                attribute=train.attribute,
                label=f"{best} attacker on {train.attribute}: {what} (strongest of the family)",
                higher_is_better=False,
                notes=[
                    *train.notes,
                    f"attackers ({', '.join(intervals)}) trained on {len(rows)} training rows (early stopping "
                    "on a fifth of them), scored on the test split",
                    FAMILY_NOTE.format(members=", ".join(intervals)),
                ],
                details={
                    "probe": best,
                    "task": train.task,
                    "family": {m: num(v.value) for m, v in intervals.items()},
                    "family_ci": {m: [num(v.ci_low), num(v.ci_high)] for m, v in intervals.items()},
                    "shuffled_auc": max(found) if found else None,
                    "shuffled_family": shuffled_family,
                    "cv_folds": None,
                    "n_train": len(rows),
                    "n_test": len(test_rows),
                    "n_rows": len(rows) + len(test_rows),
                    "hidden": list(self.hidden),
                    "components": info["components"],
                    "classes": classes,
                },
            )
        ]

    # ------------------------------------------------------------------ bias attack
    def _bias_attack(
        self, ctx: MetricContext, X_train: np.ndarray, X_test: np.ndarray
    ) -> list[MetricResult]:
        attr = self.bias_attribute or (ctx.attributes[0] if ctx.attributes else None)
        if ctx.y_train is None or attr is None or ctx.sensitive_train is None:
            return [
                probe_missing(
                    "bias_attack_eod", self.name, attr, "needs training labels and an attribute"
                )
            ]
        if attr not in ctx.sensitive_train.columns or attr not in ctx.sensitive.columns:
            return [
                probe_missing(
                    "bias_attack_eod", self.name, attr, f"attribute {attr!r} not available"
                )
            ]
        y_train = cm._binary(ctx.y_train, "y_train")
        y_test = cm._binary(ctx.y_true, "y_true")
        g_train = encode_groups(ctx.sensitive_train, attr)
        g_test = encode_groups(ctx.sensitive, attr)
        train_labels = np.asarray(g_train.names, dtype=object)[g_train.codes]
        groups = self.flipped_groups or [g for g in g_test.names if g in set(train_labels)]
        st = ctx.stats
        out = []
        for group in groups:
            members = np.flatnonzero(train_labels == str(group))
            if not len(members):
                out.append(
                    probe_missing(
                        "bias_attack_eod", self.name, attr, f"group {group!r} has no training rows"
                    )
                )
                continue
            rng = make_rng(st.seed, "bias_attack", attr, str(group))
            order = rng.permutation(members)
            eod, lows, highs = [], [], []
            for frac in self.fractions:
                y_flip = y_train.copy()
                k = round(float(frac) * len(members))
                y_flip[order[:k]] = 1 - y_flip[order[:k]]
                if len(np.unique(y_flip)) < 2:
                    eod.append(None)
                    lows.append(None)
                    highs.append(None)
                    continue
                model = make_probe(
                    self.bias_model,
                    "binary",
                    seed=0,
                    hidden=list(self.hidden),
                    max_iter=self.max_iter,
                    C=1.0,
                    alpha=self.alpha[0] if isinstance(self.alpha, list) else self.alpha,
                    n_train=len(y_flip),
                    max_dims=self.max_dims,
                    n_features=X_train.shape[1],
                )
                score = fit_predict(model, X_train, y_flip, X_test, "binary", 2)[:, 1]
                y_pred = (score >= ctx.threshold).astype(np.int64)
                boot, _ = bootstrap_confusion_counts(
                    y_test,
                    y_pred,
                    g_test,
                    patient_ids=ctx.patient_ids,
                    n_boot=st.n_boot,
                    ci_level=st.ci_level,
                    seed=make_rng(st.seed, "bias_attack_boot", attr, str(group), str(frac)),
                )
                est = boot.estimate(lambda c: cm.difference(cm.rate(c, "true_positive_rate", 0.0)))
                eod.append(num(est.value))
                lows.append(num(est.ci_low))
                highs.append(num(est.ci_high))
            out.append(
                probe_result(
                    metric="bias_attack_eod",
                    plugin=self.name,
                    attribute=attr,
                    label=f"Bias attack: EOD when flipping labels of group {group!r}",
                    value=eod[-1] if eod else None,
                    ci_low=lows[-1] if lows else None,
                    ci_high=highs[-1] if highs else None,
                    higher_is_better=False,
                    notes=[
                        BIAS_ATTACK,
                        f"value at the largest fraction ({self.fractions[-1]:g}); "
                        f"predicted positive when score >= {ctx.threshold:g}",
                    ],
                    details={
                        "fractions": [float(f) for f in self.fractions],
                        "eod": eod,
                        "eod_ci_low": lows,
                        "eod_ci_high": highs,
                        "flipped_group": str(group),
                        "attribute": attr,
                    },
                )
            )
        return out
