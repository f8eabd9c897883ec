"""The probe family: linear, tuned MLP and gradient-boosted trees, cross-validated together.

Features are standardised once and rotated once onto their principal components (all probe
rows; no labels involved).  The linear member sees every component (up to
``LINEAR_MAX_DIMS``: a rotation, the same model as on the standardised features); the MLP and
the trees see the top ``max_dims``.  All targets (attributes and their shuffled copies) share
one set of patient-grouped outer folds, stratified by the attributes' intersection, and inside
every outer training fold one grouped inner split (a fifth) on which the few hyper-parameters
are chosen: the penalty ``C`` of the linear member when several are given (the chosen model is
refitted on the whole training fold), the L2 penalty and the epochs of the MLP (early stopping),
the rounds of the trees (early stopping).  The linear and MLP members of every fold, target and
hyper-parameter are trained at once (:mod:`._probe_models`); the trees are scikit-learn's
``HistGradientBoosting*``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from fairaudit.builtin.metrics._probe_models import Targets, fit_linear, fit_mlp

MEMBERS = ("linear", "mlp", "boosting")
#: The linear member sees at most this many principal components (all of them below).
LINEAR_MAX_DIMS = 2048
#: Rows from which the principal axes are estimated (fewer rows blur weak-variance structure into
#: the noise: at 8,000 of 20,000 rows the benchmark's MLP and trees lost 0.02-0.04 AUC).
BASIS_ROWS = 20_000
#: Quantile bins of each component for the trees.
TREE_BINS = 31


@dataclass(frozen=True)
class FamilySettings:
    """Members and their few hyper-parameters (grids are chosen on the inner splits)."""

    members: tuple[str, ...] = MEMBERS
    C: tuple[float, ...] = (1.0,)
    alphas: tuple[float, ...] = (1e-3, 1.0)
    hidden: int = 32
    max_epochs: int = 150
    max_dims: int | None = 64
    boosting_rounds: int = 200
    seed: int = 0
    device: str = "cpu"


@dataclass
class Folds:
    """Outer ``(train, test)`` row positions and, inside each train part, ``(fit, check)``."""

    outer: list[tuple[np.ndarray, np.ndarray]]
    inner: list[tuple[np.ndarray, np.ndarray]]


def _split(strata: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a stratum smaller than n_splits
        if len(np.unique(strata)) > 1:
            splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            return list(splitter.split(strata, strata, groups=groups))
        return list(GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(strata, groups=groups))


def make_folds(strata: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> Folds:
    """Patient-grouped folds stratified by ``strata``, and a grouped fifth inside each."""
    outer = _split(strata, groups, n_splits, seed)
    inner = []
    for i, (train, _) in enumerate(outer):
        if len(np.unique(groups[train])) < 5:  # too few patients to hold some out
            inner.append((train, train))
            continue
        fit, check = _split(strata[train], groups[train], 5, seed + 1 + i)[0]
        inner.append((train[fit], train[check]))
    return Folds(outer, inner)


@dataclass
class Components:
    """Standardised features and their principal axes.

    ``basis`` ``(d, p)`` has orthonormal columns by decreasing variance (``variance`` per row,
    ``share`` of the total); ``scores(k)`` are the top ``k`` component scores.
    """

    x: np.ndarray
    basis: np.ndarray
    variance: np.ndarray
    share: np.ndarray

    def scores(self, k: int) -> np.ndarray:
        return self.x @ self.basis[:, :k]


def principal_components(X: np.ndarray, seed: int = 0) -> Components:
    """Standardise ``X`` (all rows) and find its principal axes from at most ``BASIS_ROWS``
    rows.  For the linear member the axes are only a rotation (any orthonormal basis gives the
    same model); the MLP and the trees read the top axes' scores."""
    x = np.asarray(X, dtype=np.float32)
    mean = x.mean(axis=0, dtype=np.float64)
    sd = x.std(axis=0, dtype=np.float64)
    x = (x - mean.astype(np.float32)) / np.where(sd > 0, sd, 1.0).astype(np.float32)
    rows = x
    if len(x) > BASIS_ROWS:
        rows = x[np.sort(np.random.default_rng(seed).choice(len(x), BASIS_ROWS, replace=False))]
    if x.shape[1] <= LINEAR_MAX_DIMS:
        from scipy.linalg import eigh

        vals, vecs = eigh(rows.T @ rows, driver="evd")  # float32: orthogonal to ~1e-6
        order = np.argsort(vals)[::-1]
        basis, var = vecs[:, order], np.clip(vals[order], 0, None)
        total = float(var.sum()) or 1.0
    else:
        from sklearn.utils.extmath import randomized_svd

        _, s, vt = randomized_svd(rows, LINEAR_MAX_DIMS, random_state=seed)
        basis, var = vt.T, s**2
        total = float(np.einsum("ij,ij->", rows, rows, dtype=np.float64)) or 1.0
    return Components(x, basis.astype(np.float32), var / len(rows), var / total)


def _stack(values: list[np.ndarray], n_classes: list[int]) -> tuple[Targets, np.ndarray, np.ndarray]:
    """Targets as one matrix; regression targets standardised (returns the mean and SD used)."""
    cols = np.column_stack([np.asarray(v, dtype=np.float64) for v in values])
    mean = np.zeros(cols.shape[1])
    sd = np.ones(cols.shape[1])
    for t, k in enumerate(n_classes):
        if k == 1:
            mean[t] = np.nanmean(cols[:, t])
            sd[t] = np.nanstd(cols[:, t]) or 1.0
            cols[:, t] = (cols[:, t] - mean[t]) / sd[t]
    return Targets(cols, np.asarray(n_classes)), mean, sd


def _assemble(pred_by_fold: list[np.ndarray], folds: Folds, n: int, n_classes: list[int],
              choice: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> list[np.ndarray]:
    """Out-of-fold predictions per target from each fold's chosen hyper-parameter.

    ``pred_by_fold[f]`` is ``(test rows, T, H, k)``; ``choice`` ``(F, T)``.
    """
    out = []
    for t, k in enumerate(n_classes):
        oof = np.full((n,) if k == 1 else (n, k), np.nan)
        for f, (_, test) in enumerate(folds.outer):
            p = pred_by_fold[f][:, t, choice[f, t]]
            oof[test] = p[:, 0] * sd[t] + mean[t] if k == 1 else p[:, :k]
        out.append(oof)
    return out


def _val_loss(pred: np.ndarray, y: np.ndarray, n_classes: np.ndarray) -> np.ndarray:
    """Mean loss ``(T, H)`` of predictions ``(rows, T, H, k)`` against ``y`` ``(rows, T)``."""
    ok = ~np.isnan(y)
    code = np.nan_to_num(y).astype(np.int64).clip(min=0)
    picked = np.take_along_axis(pred, code[:, :, None, None], axis=-1)[..., 0]
    ce = -np.log(np.clip(picked, 1e-12, None))
    se = (pred[..., 0] - np.nan_to_num(y)[:, :, None]) ** 2
    terms = np.where((n_classes == 1)[None, :, None], se, ce)
    return np.where(ok[:, :, None], terms, 0.0).sum(axis=0) / np.maximum(ok.sum(axis=0), 1)[:, None]


def _linear(comp: Components, targets: Targets, folds: Folds, s: FamilySettings) -> tuple[list[np.ndarray], np.ndarray]:
    """Per fold predictions ``(test rows, T, 1, k)`` of the linear member, and the ``C`` used.

    With several ``C``, each fold's is chosen on its inner split and the model refitted on the
    whole training fold.  Every fit starts from zero: a start fitted on other rows would leak
    them into a fold whose optimisation stops before convergence.
    """
    n = len(comp.x)
    present = ~np.isnan(targets.values)
    grid = np.asarray(s.C, dtype=np.float64)
    kw = {"basis": comp.basis, "variance": comp.variance, "device": s.device}
    factor = np.where(targets.n_classes == 1, 2.0, 1.0)  # squared error vs log-loss scaling of C

    def masks(parts: list[np.ndarray]) -> np.ndarray:
        m = np.zeros((len(parts), n), dtype=bool)
        for f, rows in enumerate(parts):
            m[f, rows] = True
        return m

    def penalty(train: np.ndarray, c: np.ndarray) -> np.ndarray:
        """``(F, T, H)`` from ``c`` ``(H,)`` or ``(F, T, H)``."""
        rows = np.maximum((train[:, :, None] & present[None]).sum(axis=1), 1)  # (F, T)
        return factor[None, :, None] / (c * rows[:, :, None])

    chosen = np.zeros((len(folds.outer), targets.values.shape[1]), dtype=np.int64)
    if len(grid) > 1:
        fit = masks([a for a, _ in folds.inner])
        pred, _, _ = fit_linear(comp.x, targets, fit, penalty(fit, grid), **kw)
        for f, (_, check) in enumerate(folds.inner):
            chosen[f] = _val_loss(pred[check, f], targets.values[check], targets.n_classes).argmin(axis=1)
    train = masks([tr for tr, _ in folds.outer])
    c = grid[chosen]  # (F, T)
    pred, _, _ = fit_linear(comp.x, targets, train, penalty(train, c[:, :, None]), **kw)
    return [pred[test, f] for f, (_, test) in enumerate(folds.outer)], c


def _mlp(z: np.ndarray, targets: Targets, folds: Folds, s: FamilySettings) -> tuple[list[np.ndarray], np.ndarray]:
    alphas = np.asarray(s.alphas, dtype=np.float64)
    pred, loss = fit_mlp(
        z, targets, [a for a, _ in folds.inner], [b for _, b in folds.inner], [te for _, te in folds.outer], alphas,
        hidden=s.hidden, max_epochs=s.max_epochs, seed=s.seed, device=s.device,
    )
    return pred, loss.argmin(axis=2)


def _boosting(z: np.ndarray, targets: Targets, folds: Folds, s: FamilySettings) -> list[np.ndarray]:
    """Per fold predictions ``(test rows, T, 1, k)`` of gradient-boosted trees.

    The trees' OpenMP pool is held to torch's thread count (which the run sets from the CPUs
    really free): a full pool spinning on busy CPUs made each fit ten times slower.
    """
    import sys

    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    with threadpool_limits(limits=torch.get_num_threads() if torch is not None else None, user_api="openmp"):
        return _fit_trees(z, targets, folds, s)


def _fit_trees(z: np.ndarray, targets: Targets, folds: Folds, s: FamilySettings) -> list[np.ndarray]:
    from fairaudit.builtin.metrics._probe_trees import bin_codes, trees

    k = targets.classes
    z = bin_codes(z, TREE_BINS)  # every row binned once (no labels), not once per fit
    out = []
    for (_, test), (fit, check) in zip(folds.outer, folds.inner, strict=True):
        pred = np.zeros((len(test), targets.values.shape[1], 1, k))
        for t, n_classes in enumerate(targets.n_classes):
            y = targets.values[:, t]
            a, b = fit[~np.isnan(y[fit])], check[~np.isnan(y[check])]
            cls = trees("regressor" if n_classes == 1 else "classifier")
            model = cls(max_iter=s.boosting_rounds, learning_rate=0.3, max_leaf_nodes=7, max_bins=TREE_BINS,
                        n_iter_no_change=3, random_state=s.seed)
            if n_classes > 1:  # early stopping needs every class seen in training among the held-out rows
                enough = len(b) > 0 and set(np.unique(y[b])) <= set(np.unique(y[a]))
            else:
                enough = len(b) > 1
            if enough and not np.array_equal(a, b):
                model.set_params(early_stopping=True)
                model.fit(z[a], y[a], X_val=z[b], y_val=y[b])
            else:
                model.set_params(early_stopping=False, max_iter=min(s.boosting_rounds, 100))
                model.fit(z[a], y[a])
            if n_classes == 1:
                pred[:, t, 0, 0] = model.predict(z[test])
            else:
                pred[:, t, 0, model.classes_.astype(int)] = model.predict_proba(z[test])
        out.append(pred)
    return out


def fit_family(X: np.ndarray, values: list[np.ndarray], n_classes: list[int], folds: Folds,
               settings: FamilySettings) -> tuple[dict[str, list[np.ndarray]], dict[str, object]]:
    """Out-of-fold predictions of every member for every target, and what was chosen.

    ``values[t]`` holds target ``t`` per row of ``X`` (class codes ``0..K-1``, or numbers for
    ``n_classes[t] == 1``; NaN where a row has none).  Classification targets give probabilities
    ``(n, K)``, regression targets values ``(n,)``; rows without a value stay NaN.
    """
    unknown = sorted(set(settings.members) - set(MEMBERS))
    if unknown:
        raise ValueError(f"unknown probe(s) {unknown}; the family has {list(MEMBERS)}")
    clock = time.perf_counter()
    comp = principal_components(X, settings.seed)
    dims = min(settings.max_dims or comp.basis.shape[1], comp.basis.shape[1])
    top = comp.scores(dims)
    seconds = {"components": time.perf_counter() - clock}
    targets, mean, sd = _stack(values, n_classes)
    n = len(top)
    out: dict[str, list[np.ndarray]] = {}
    info: dict[str, object] = {"components": dims, "variance_kept": float(comp.share[:dims].sum()), "seconds": seconds}
    zero = np.zeros((len(folds.outer), len(n_classes)), dtype=np.int64)
    for member in settings.members:
        clock = time.perf_counter()
        if member == "linear":
            pred, c = _linear(comp, targets, folds, settings)
            out[member] = _assemble(pred, folds, n, n_classes, zero, mean, sd)
            info["linear_C"] = c.tolist()
        elif member == "mlp":
            pred, choice = _mlp(top, targets, folds, settings)
            out[member] = _assemble(pred, folds, n, n_classes, choice, mean, sd)
            info["mlp_alpha"] = np.asarray(settings.alphas)[choice].tolist()
        else:
            pred = _boosting(top, targets, folds, settings)
            out[member] = _assemble(pred, folds, n, n_classes, zero, mean, sd)
        seconds[member] = time.perf_counter() - clock
    return out, info
