"""Probe targets, the probe family's settings and results, scikit-learn probe models (the bias
attack and the benchmark peer), row caps."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairaudit.base import MetricContext, MetricOutput
from fairaudit.builtin.metrics._common import estimated_result
from fairaudit.builtin.metrics._probe_family import MEMBERS, FamilySettings
from fairaudit.outofcore import is_lazy, read_rows
from fairaudit.results import MetricResult
from fairaudit.stats.bootstrap import make_rng

Task = Literal["binary", "multiclass", "regression"]
#: Under ``max_rows``, every stratum keeps at least this many rows (or all it has).
MIN_ROWS_PER_STRATUM = 100


@dataclass
class Target:
    """A probe target: one attribute's values on the rows that have one."""

    attribute: str
    task: Task
    rows: np.ndarray
    values: np.ndarray
    classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _column(
    frame: pd.DataFrame | None, extras: dict[str, np.ndarray], name: str, n: int
) -> pd.Series | None:
    if frame is not None and name in frame.columns:
        return frame[name].reset_index(drop=True)
    if name in extras and len(extras[name]) == n:
        return pd.Series(np.asarray(extras[name]))
    return None


def make_target(
    attribute: str, values: pd.Series, *, continuous: bool, max_classes: int, min_per_class: int
) -> Target | None:
    """Classification target (codes ``0..K-1``) or regression target for one attribute."""
    values = pd.Series(values).reset_index(drop=True)
    present = values.notna().to_numpy()
    numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
        values.dtype
    )
    n_unique = values[present].nunique()
    notes = []
    if (~present).any():
        notes.append(f"{int((~present).sum())} row(s) without a value left out")
    if continuous or (numeric and n_unique > max_classes):
        rows = np.flatnonzero(present)
        return Target(
            attribute, "regression", rows, values[present].to_numpy(np.float64), notes=notes
        )
    labels = values[present].astype(str)
    counts = labels.value_counts()
    rare = sorted(counts[counts < min_per_class].index.tolist())
    if rare:
        notes.append(f"classes with fewer than {min_per_class} rows left out: {rare}")
    keep = present.copy()
    keep[np.flatnonzero(present)] = ~labels.isin(rare).to_numpy()
    labels = values[keep].astype(str)
    classes = sorted(labels.unique().tolist())
    if len(classes) < 2:
        return None
    codes = pd.Categorical(labels, categories=classes).codes.astype(np.int64)
    return Target(
        attribute,
        "binary" if len(classes) == 2 else "multiclass",
        np.flatnonzero(keep),
        codes,
        classes,
        notes,
    )


def probe_targets(
    ctx: MetricContext,
    continuous: list[str],
    max_classes: int,
    cv_folds: int,
    sensitive: pd.DataFrame | None = None,
    n: int | None = None,
) -> list[Target]:
    """Targets for every attribute of the context, plus continuous ones found in ``extras``."""
    frame = ctx.sensitive if sensitive is None else sensitive
    n = len(frame) if n is None else n
    names = list(dict.fromkeys([*ctx.attributes, *continuous]))
    out = []
    for name in names:
        col = _column(frame, ctx.extras if sensitive is None else {}, name, n)
        if col is None:
            continue
        t = make_target(
            name,
            col,
            continuous=name in continuous,
            max_classes=max_classes,
            min_per_class=cv_folds,
        )
        if t is not None:
            out.append(t)
    return out


def name_representation(results: list[MetricResult], ctx: MetricContext) -> list[MetricResult]:
    """Say in every result which representation the probe read (``details.representation`` and a
    note), e.g. "input pixels pooled to 32×32" or "model features (1024-d, ...)"."""
    if ctx.features_name:
        for result in results:
            result.details.setdefault("representation", ctx.features_name)
            result.notes.append(f"representation read: {ctx.features_name}")
    return results


#: What the probe plugins emit (their ``outputs()``; every probe result carries these fields).
PROBE_OUTPUTS: dict[str, MetricOutput] = {o.name: o for o in (
    MetricOutput("attribute_probe_auc", "probe", headline=True),
    MetricOutput("attribute_probe_mae", "probe"),
    MetricOutput("attribute_probe_r2", "probe"),
    MetricOutput("attack_probe_auc", "probe", headline=True),
    MetricOutput("bias_attack_eod", "attack", derived_from="true_positive_rate", higher_is_better=False),
)}


def probe_result(estimate: object | None = None, **fields: Any) -> MetricResult:
    """Every probe metric's :class:`MetricResult` (value and CI from ``estimate`` when given), with
    the role its output declares."""
    declared = PROBE_OUTPUTS[fields["metric"]].declared() if fields.get("metric") in PROBE_OUTPUTS else {}
    fields = {**declared, **fields}
    if estimate is None:
        return MetricResult(**fields)
    return estimated_result(estimate, **fields)


def probe_missing(metric: str, plugin: str, attribute: str | None, why: str) -> MetricResult:
    """A probe metric that could not be computed, and why."""
    return probe_result(metric=metric, plugin=plugin, attribute=attribute, status="not_applicable", notes=[why])


def family_settings(
    plugin: str,
    probes: list[str],
    hidden: list[int] | int,
    alpha: float | list[float],
    C: float | list[float],
    max_epochs: int,
    max_dims: int | None,
    seed: int,
    device: str,
) -> FamilySettings:
    """The family's settings from a probe plugin's parameters (clear errors for old values)."""
    unknown = sorted(set(probes) - set(MEMBERS))
    if unknown or not probes:
        raise ValueError(f"{plugin}: probes must be some of {list(MEMBERS)}, got {probes}")
    widths = [hidden] if isinstance(hidden, int) else list(hidden)
    if len(widths) != 1 or widths[0] < 1:
        raise ValueError(
            f"{plugin}: the probe MLP has one hidden layer; give its width, e.g. [64] (got {hidden}; "
            "deeper scikit-learn MLP probes were replaced by the tuned, early-stopped family MLP)"
        )
    grid = lambda v: tuple(float(x) for x in (v if isinstance(v, list) else [v]))  # noqa: E731
    return FamilySettings(
        members=tuple(m for m in MEMBERS if m in probes),
        C=grid(C),
        alphas=grid(alpha),
        hidden=int(widths[0]),
        max_epochs=int(max_epochs),
        max_dims=max_dims,
        seed=seed,
        device=device,
    )


def make_probe(
    kind: str,
    task: Task,
    *,
    seed: int,
    hidden: list[int],
    max_iter: int,
    C: float,
    alpha: float,
    n_train: int,
    max_dims: int | None = None,
    n_features: int = 0,
) -> Any:
    """A standardising scikit-learn pipeline: linear (logistic/ridge) or MLP probe.

    MLPs see the top ``max_dims`` principal components (fitted on the training rows) when the
    representation is wider, for speed; regression MLPs predict the standardised target.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "linear":
        if task == "regression":
            return make_pipeline(StandardScaler(), Ridge(alpha=1.0 / C))
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    if kind != "mlp":
        raise ValueError(f"probe kind must be 'linear' or 'mlp', got {kind!r}")
    early = n_train >= 500  # a 10% validation split large enough for early stopping
    kw = {
        "hidden_layer_sizes": tuple(hidden),
        "alpha": alpha,
        "max_iter": max_iter,
        "early_stopping": early,
        "random_state": seed,
    }
    model: Any = (
        MLPClassifier(**kw)
        if task != "regression"
        else TransformedTargetRegressor(regressor=MLPRegressor(**kw), transformer=StandardScaler())
    )
    steps: list[Any] = [StandardScaler()]
    if max_dims is not None and n_features > max_dims and n_train > max_dims:
        steps.append(PCA(n_components=max_dims, random_state=seed))
    return make_pipeline(*steps, model)


def fit_predict(
    model: Any,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    task: Task,
    n_classes: int,
) -> np.ndarray:
    """Fit; return probabilities ``(n, K)`` over all classes (even absent ones) or values."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    if task == "regression":
        return np.asarray(model.predict(X_test), dtype=np.float64)
    proba = np.zeros((len(X_test), n_classes))
    proba[:, model.classes_.astype(int)] = model.predict_proba(X_test)
    return proba


def cross_val_predict(
    kind: str,
    X: np.ndarray,
    target_values: np.ndarray,
    task: Task,
    n_classes: int,
    patients: np.ndarray,
    *,
    folds: int,
    seed: int,
    **probe_kw: Any,
) -> np.ndarray:
    """Out-of-fold predictions with patient-grouped (and class-stratified) folds."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    if task == "regression":
        splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = splitter.split(X, target_values, groups=patients)
        out = np.zeros(len(X))
    else:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = splitter.split(X, target_values, groups=patients)
        out = np.zeros((len(X), n_classes))
    for train, test in splits:
        model = make_probe(
            kind, task, seed=seed, n_train=len(train), n_features=X.shape[1], **probe_kw
        )
        out[test] = fit_predict(model, X[train], target_values[train], X[test], task, n_classes)
    return out


def subsample(
    rows: np.ndarray, patients: np.ndarray, max_samples: int | None, rng: np.random.Generator
) -> np.ndarray:
    """At most ``max_samples`` rows, drawn by whole patients."""
    if max_samples is None or len(rows) <= max_samples:
        return rows
    uniq = np.unique(patients[rows])
    rng.shuffle(uniq)
    keep, total = [], 0
    counts = pd.Series(patients[rows]).value_counts()
    for p in uniq:
        total += int(counts[p])
        keep.append(p)
        if total >= max_samples:
            break
    return rows[np.isin(patients[rows], keep)]


# ---------------------------------------------------------------------- large representations
def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` (< ``counts.sum()``) in proportion to ``counts`` (largest remainders)."""
    quota = counts * (total / counts.sum())
    take = np.floor(quota).astype(np.int64)
    extra = np.argsort(-(quota - take), kind="stable")[: total - int(take.sum())]
    take[extra] += 1
    return np.minimum(take, counts)


def stratified_rows(strata: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_rows`` sorted row positions, each stratum keeping its share of the rows.

    Every stratum first keeps ``min(size, MIN_ROWS_PER_STRATUM)`` rows (so small groups stay
    probe-able), the rest is shared in proportion to the strata's remaining sizes.
    """
    if max_rows >= len(strata):
        return np.arange(len(strata))
    codes = np.unique(strata, return_inverse=True)[1].reshape(-1)
    counts = np.bincount(codes)
    base = np.minimum(counts, MIN_ROWS_PER_STRATUM)
    if base.sum() >= max_rows:
        take = _allocate(base, max_rows)
    else:
        take = base + _allocate(counts - base, max_rows - int(base.sum()))
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    chosen = [rng.choice(order[bounds[g]:bounds[g + 1]], size=int(k), replace=False)
              for g, k in enumerate(take) if k]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _strata(sensitive: pd.DataFrame | None, attributes: list[str], n: int) -> tuple[np.ndarray, list[str]]:
    """One stratum code per row: the intersection of the attributes present in ``sensitive``."""
    cols = [a for a in attributes if sensitive is not None and a in sensitive.columns]
    if not cols or sensitive is None or len(sensitive) != n:
        return np.zeros(n, dtype=np.int64), []
    frame = sensitive[cols].astype(str).reset_index(drop=True)
    return frame.groupby(cols, sort=True).ngroup().to_numpy(), cols


def _slice_test(ctx: MetricContext, rows: np.ndarray) -> dict[str, Any]:
    """Per-row fields of the test side of ``ctx`` restricted to ``rows``."""
    n = len(ctx.y_true)
    return {
        "y_true": np.asarray(ctx.y_true)[rows],
        "y_score": None if ctx.y_score is None else np.asarray(ctx.y_score)[rows],
        "sensitive": ctx.sensitive.iloc[rows].reset_index(drop=True),
        "patient_ids": None if ctx.patient_ids is None else np.asarray(ctx.patient_ids)[rows],
        "extras": {k: (np.asarray(v)[rows] if len(v) == n else v) for k, v in ctx.extras.items()},
        "images": ctx.images[rows] if ctx.images is not None and len(ctx.images) == n else ctx.images,
    }


def _cap(features: Any, sensitive: pd.DataFrame | None, attributes: list[str], max_rows: int | None,
         rng: np.random.Generator) -> tuple[np.ndarray | None, Any, str | None]:
    """``(rows or None, materialised features, note)`` for one side (test or train)."""
    n = len(features)
    if max_rows is None or n <= max_rows:
        return None, (read_rows(features) if is_lazy(features) else features), None
    strata, cols = _strata(sensitive, attributes, n)
    rows = stratified_rows(strata, max_rows, rng)
    how = f"stratified by {' & '.join(cols)}" if cols else "uniformly"
    return rows, read_rows(features, rows), f"{len(rows)} of {n} rows drawn at random ({how}; max_rows={max_rows})"


def cap_rows(ctx: MetricContext, max_rows: int | None, metric: str, *,
             train: bool = False) -> tuple[MetricContext, list[str]]:
    """``ctx`` with at most ``max_rows`` test rows (and training rows when ``train``).

    Rows are drawn at random, seeded, stratified by the audited attributes; only the kept rows
    of the representation are read into memory (lazy/memory-mapped features stay on disk).
    Returns the restricted context and notes saying what was subsampled.
    """
    if max_rows is not None and max_rows < 2:
        raise ValueError(f"{metric}: max_rows must be at least 2, got {max_rows}")
    notes: list[str] = []
    changes: dict[str, Any] = {}
    if ctx.features is not None:
        rng = make_rng(ctx.stats.seed, metric, "max_rows", "test")
        rows, X, note = _cap(ctx.features, ctx.sensitive, ctx.attributes, max_rows, rng)
        changes["features"] = X
        if rows is not None:
            changes.update(_slice_test(ctx, rows))
            notes.append(f"representation subsampled: {note}")
    if train and ctx.features_train is not None:
        rng = make_rng(ctx.stats.seed, metric, "max_rows", "train")
        rows, X, note = _cap(ctx.features_train, ctx.sensitive_train, ctx.attributes, max_rows, rng)
        changes["features_train"] = X
        if rows is not None:
            changes["y_train"] = None if ctx.y_train is None else np.asarray(ctx.y_train)[rows]
            if ctx.sensitive_train is not None:
                changes["sensitive_train"] = ctx.sensitive_train.iloc[rows].reset_index(drop=True)
            notes.append(f"training representation subsampled: {note}")
    return replace(ctx, **changes), notes
