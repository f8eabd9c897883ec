"""Many probe models trained at once in torch: every (fold, target, hyper-parameter) is a model.

All models read the same feature matrix.  Targets are columns of one matrix (a class code, or a
standardised value for a regression target; NaN where a row has none).  A linear model is one
column block of a single weight matrix, so one matrix product serves all of them; the MLPs of a
fold are slices of one weight tensor and every fold streams its own training rows, so one
batched product computes every model's hidden layer without touching rows a model does not fit.
Losses are summed over models and the optimisers (L-BFGS, Adam) never mix the models'
parameters, so each model is trained as if alone.  Torch is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Targets:
    """``T`` targets over ``n`` rows.

    Attributes
    ----------
    values:
        ``(n, T)`` float: class code, or standardised value of a regression target; NaN = none.
    n_classes:
        ``(T,)`` classes of each target; ``1`` marks a regression target.
    """

    values: np.ndarray
    n_classes: np.ndarray

    @property
    def classes(self) -> int:
        """Columns of a prediction: the most classes (1 when every target is a regression)."""
        return int(self.n_classes.max())

    @property
    def width(self) -> int:
        """Free outputs of a model: ``K - 1`` logits (the first class is the reference, as a
        binary logistic regression has one), or the one value of a regression."""
        return max(int(self.n_classes.max()) - 1, 1)


def torch_device(device: str) -> Any:
    """``device`` when torch can use it (``"cuda"`` without a GPU falls back to the CPU)."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(device)


class _Heads:
    """Per-target loss and outputs: softmax over a target's classes with the first logit fixed at
    0 (so a binary target is a logistic regression), or the squared error of output 0."""

    def __init__(self, targets: Targets, device: Any):
        import torch

        self.k = targets.classes
        width = max(self.k - 1, 1)
        n_classes = torch.as_tensor(targets.n_classes, device=device)
        self.regression = n_classes == 1  # (T,)
        cols = torch.arange(width, device=device)
        # logit j + 1 of a target exists when j + 1 < its classes
        self.unused = torch.where(cols[None, :] + 1 < n_classes[:, None], 0.0, float("-inf"))[:, None, :]

    def loss(self, out: Any, y: Any) -> Any:
        """``out`` ``(..., T, H, width)`` and ``y`` ``(..., T)`` (NaN-free) -> ``(..., T, H)``."""
        import torch

        se = (out[..., 0] - y[..., None]) ** 2
        if self.k == 1:
            return se
        logits = out + self.unused  # (..., T, H, width); the reference class has logit 0
        top = logits.amax(dim=-1).clamp(min=0)
        lse = top + torch.log(torch.exp(-top) + torch.exp(logits - top[..., None]).sum(dim=-1))
        code = torch.where(self.regression, 0.0, y.clamp(min=0)).long()  # (..., T)
        pick = torch.gather(out, -1, (code - 1).clamp(min=0)[..., None, None].expand(*out.shape[:-1], 1))[..., 0]
        ce = lse - torch.where((code > 0)[..., None], pick, 0.0)
        return torch.where(self.regression[:, None], se, ce)

    def predict(self, out: Any) -> Any:
        """``(..., T, H, k)``: class probabilities, or the value in column 0."""
        import torch

        if self.k == 1:
            return out[..., :1]
        zero = torch.zeros((*out.shape[:-1], 1), device=out.device, dtype=out.dtype)
        prob = torch.softmax(torch.cat([zero, out[..., : self.k - 1] + self.unused[..., : self.k - 1]], dim=-1), -1)
        value = torch.nn.functional.pad(out[..., :1], (0, self.k - 1))
        return torch.where(self.regression[:, None, None], value, prob)


def fit_linear(
    features: np.ndarray,
    targets: Targets,
    train: np.ndarray,
    penalty: np.ndarray,
    *,
    basis: np.ndarray | None = None,
    variance: np.ndarray | None = None,
    device: str = "cpu",
    max_iter: int = 12,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L2-penalised softmax (logistic) / least-squares models, one per (fold, target, penalty).

    ``train`` ``(F, n)`` marks each fold's fitting rows; ``penalty`` ``(F, T, H)`` is the
    ``lambda`` of ``mean_train(loss) + lambda / 2 * ||W||^2`` (``LogisticRegression(C)``:
    ``1 / (C * n_train)``; ``Ridge(alpha)``: ``2 * alpha / n_train``).  The weights live on the
    principal axes ``basis`` ``(d, p)`` of ``features`` (``None``: the features are component
    scores), whose ``variance`` rescales each by its curvature, so L-BFGS gets close
    in a few steps (12 by default: out-of-fold AUCs within about 0.004 of the converged
    models on the benchmark data; scikit-learn's own default stops at a gradient of 1e-4).
    Returns every row's prediction ``(n, F, T, H, classes)``, the weights
    ``(p, F, T, H, width)`` and the intercepts.
    """
    import torch

    dev = torch_device(device)
    z = torch.as_tensor(np.ascontiguousarray(features), dtype=torch.float32, device=dev)
    n = z.shape[0]
    axes = None if basis is None else torch.as_tensor(basis, dtype=torch.float32, device=dev)
    p = z.shape[1] if axes is None else axes.shape[1]
    f_count, t_count, h_count = penalty.shape
    k = targets.width
    heads = _Heads(targets, dev)
    y_np = np.nan_to_num(targets.values, nan=0.0)
    y = torch.as_tensor(y_np, dtype=torch.float32, device=dev)
    fits = torch.as_tensor(train[:, :, None] & ~np.isnan(targets.values)[None], device=dev)  # (F, n, T)
    count = fits.sum(dim=1).clamp(min=1).float()  # (F, T)
    pen = torch.as_tensor(penalty, dtype=torch.float32, device=dev)
    # per target: the loss's curvature (squared error 2, logistic at most 1/4) plus a typical penalty
    curvature = np.where(targets.n_classes == 1, 2.0, 0.25)
    typical = np.median(penalty.reshape(f_count, t_count, -1), axis=(0, 2))
    # only the outputs a target uses are parameters (a binary target has one logit, not ``width``)
    cols = [((f * t_count + t) * h_count + h) * k + j for f in range(f_count) for t in range(t_count)
            for h in range(h_count) for j in range(max(int(targets.n_classes[t]) - 1, 1))]
    col_target = torch.as_tensor([(c // (k * h_count)) % t_count for c in cols], device=dev)
    cols_t = torch.as_tensor(cols, device=dev)
    var = (z.var(dim=0, unbiased=False) if variance is None
           else torch.as_tensor(variance, dtype=torch.float32, device=dev))[:, None]
    scale = 1.0 / torch.sqrt(torch.as_tensor(curvature, dtype=torch.float32, device=dev)[col_target] * var
                             + torch.as_tensor(typical, dtype=torch.float32, device=dev)[col_target])  # (p, C)
    pen_col = pen.reshape(-1)[cols_t // k]  # (C,)
    u = torch.zeros((p, len(cols)), device=dev, requires_grad=True)
    b = torch.zeros((f_count, t_count, h_count, k), device=dev, requires_grad=True)
    opt = torch.optim.LBFGS([u, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-5, tolerance_change=1e-9)
    weight = fits.permute(1, 0, 2)[..., None].float() / count[None, :, :, None]  # (n, F, T, 1)

    def forward() -> Any:
        used = z @ (u * scale) if axes is None else z @ (axes @ (u * scale))
        out = torch.zeros((n, f_count * t_count * h_count * k), device=dev).index_copy(1, cols_t, used)
        return out.reshape(n, f_count, t_count, h_count, k) + b

    def closure() -> Any:
        opt.zero_grad()
        data = (heads.loss(forward(), y[:, None, :]) * weight).sum(dim=0)  # (F, T, H)
        loss = data.sum() + 0.5 * (pen_col * ((u * scale) ** 2).sum(dim=0)).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = heads.predict(forward()).cpu().numpy().astype(np.float64)
        w = torch.zeros((p, f_count * t_count * h_count * k), device=dev).index_copy(1, cols_t, u * scale)
        return pred, w.reshape(p, f_count, t_count, h_count, k).cpu().numpy(), b.detach().cpu().numpy()


def _pad(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack index lists of unequal length: ``(F, L)`` indices and a validity mask."""
    width = max(1, max(len(r) for r in rows))
    idx = np.zeros((len(rows), width), dtype=np.int64)
    ok = np.zeros((len(rows), width), dtype=bool)
    for i, r in enumerate(rows):
        idx[i, : len(r)] = r
        ok[i, : len(r)] = True
    return idx, ok


def fit_mlp(
    features: np.ndarray,
    targets: Targets,
    fit_rows: list[np.ndarray],
    val_rows: list[np.ndarray],
    out_rows: list[np.ndarray],
    alpha: np.ndarray,
    *,
    hidden: int = 64,
    max_epochs: int = 150,
    patience: int = 3,
    batch_size: int = 512,
    learning_rate: float = 1e-2,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[list[np.ndarray], np.ndarray]:
    """One-hidden-layer ReLU MLPs, one per (fold, target, ``alpha``), with early stopping.

    Fold ``f``'s models fit ``fit_rows[f]`` with Adam, minimising per step
    ``mean_batch(loss) + alpha / (2 * batch rows) * ||W||^2`` (``MLPClassifier(alpha)``), and
    stop when the loss on ``val_rows[f]`` has not improved by ``1e-4`` for ``patience``
    epochs (a learning rate of 1e-2 and a patience of 3 stop after about a third of the epochs
    of 3e-3 and 5, at the same or slightly higher out-of-fold AUCs on the benchmark data).  Returns, per fold,
    the predictions for ``out_rows[f]`` ``(rows, T, H, classes)`` at each
    model's best validation epoch, and the best validation losses ``(F, T, H)``.
    """
    import torch

    dev = torch_device(device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.as_tensor(np.ascontiguousarray(features), dtype=torch.float32, device=dev)
    p = z.shape[1]
    f_count, (t_count, h_count), k = len(fit_rows), (targets.values.shape[1], len(alpha)), targets.width
    m_count = t_count * h_count
    heads = _Heads(targets, dev)
    present = ~np.isnan(targets.values)
    y = torch.as_tensor(np.nan_to_num(targets.values, nan=0.0), dtype=torch.float32, device=dev)
    has = torch.as_tensor(present, device=dev)
    a = torch.as_tensor(alpha, dtype=torch.float32, device=dev)

    def glorot(fan_in: int, fan_out: int, shape: tuple[int, ...]) -> Any:
        bound = float(np.sqrt(6.0 / (fan_in + fan_out)))
        return ((torch.rand(shape, generator=gen) * 2 - 1) * bound).to(dev).requires_grad_()

    w1 = glorot(p, hidden, (f_count, p, m_count * hidden))
    b1 = glorot(p, hidden, (f_count, 1, m_count * hidden))
    # second layer: each model's own (hidden, k) block, contracted per model (a dense
    # block-diagonal product would cost as much as the first layer, nearly all of it zeros)
    w2 = glorot(hidden, k, (f_count, m_count, hidden, k))
    b2 = glorot(hidden, k, (f_count, 1, m_count, k))
    opt = torch.optim.Adam([w1, b1, w2, b2], lr=learning_rate)

    def forward(idx: Any) -> Any:
        """``idx`` ``(F, L)`` rows -> outputs ``(F, L, T, H, k)``."""
        h = torch.relu(torch.baddbmm(b1, z[idx], w1)).reshape(f_count, idx.shape[1], m_count, hidden)
        out = torch.einsum("flmh,fmhk->flmk", h, w2) + b2
        return out.reshape(f_count, idx.shape[1], t_count, h_count, k)

    def data_loss(idx: Any, ok: Any) -> tuple[Any, Any]:
        """Summed loss ``(F, T, H)`` over valid rows and the number of rows ``(F, T)``."""
        use = ok[..., None] & has[idx]  # (F, L, T)
        terms = heads.loss(forward(idx), y[idx])
        return torch.where(use[..., None], terms, 0.0).sum(dim=1), use.sum(dim=1)

    val_idx, val_ok = (torch.as_tensor(x, device=dev) for x in _pad(val_rows))
    out_idx, _ = (torch.as_tensor(x, device=dev) for x in _pad(out_rows))
    fit_np = [np.asarray(r) for r in fit_rows]
    steps = max(1, int(np.ceil(max(len(r) for r in fit_np) / batch_size)))
    batch_size = max(1, int(np.ceil(max(len(r) for r in fit_np) / steps)))  # even batches: no padded last one
    best = torch.full((f_count, t_count, h_count), float("inf"), device=dev)
    since = torch.zeros_like(best)
    kept = torch.zeros((f_count, out_idx.shape[1], t_count, h_count, targets.classes), device=dev)
    for _ in range(max_epochs):
        order = [r[torch.randperm(len(r), generator=gen).numpy()] for r in fit_np]
        idx_all, ok_all = _pad([np.resize(o, steps * batch_size)[: steps * batch_size] if len(o) else o
                                for o in order])
        for j, r in enumerate(order):  # rows beyond a fold's own count are repeats: masked out
            ok_all[j, len(r):] = False
        idx_all = torch.as_tensor(idx_all, device=dev)
        ok_all = torch.as_tensor(ok_all, device=dev)
        for s in range(steps):
            sl = slice(s * batch_size, (s + 1) * batch_size)
            data, rows = data_loss(idx_all[:, sl], ok_all[:, sl])
            sq = (w1.reshape(f_count, p, t_count, h_count, hidden) ** 2).sum(dim=(1, 4)) + (
                (w2**2).sum(dim=(2, 3)).reshape(f_count, t_count, h_count))
            loss = ((data + 0.5 * a * sq) / rows.clamp(min=1)[..., None]).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            data, rows = data_loss(val_idx, val_ok)
            score = data / rows.clamp(min=1)[..., None]
            better = score < best - 1e-4  # scikit-learn's tol and n_iter_no_change
            best = torch.where(better, score, best)
            since = torch.where(better, 0.0, since + 1)
            if bool(better.any()):
                pred = heads.predict(forward(out_idx))
                kept = torch.where(better[:, None, :, :, None], pred, kept)
            if bool((since >= patience).all()):
                break
    kept_np = kept.cpu().numpy().astype(np.float64)
    return [kept_np[f, : len(r)] for f, r in enumerate(out_rows)], best.cpu().numpy().astype(np.float64)
