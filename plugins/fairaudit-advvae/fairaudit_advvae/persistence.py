"""Save and load a fitted AdversarialVAEDebiaser: one safetensors file, weights plus JSON metadata.

Tensors: ``model.*`` (the VAE, task head and adversaries), ``x_mean`` and ``x_scale``.
Metadata (strings): ``format``, ``params`` (the constructor parameters, JSON) and ``fitted``
(input width, attribute encodings, history, kept epoch, adversary audit, seed; JSON).
No pickle is involved, so loading an untrusted file cannot run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fairaudit import CheckpointError
from fairaudit_advvae.attributes import AttributeTarget

if TYPE_CHECKING:
    from fairaudit_advvae.debiaser import AdversarialVAEDebiaser

FORMAT = "fairaudit-advvae/1"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_debiaser(est: AdversarialVAEDebiaser, path: str | os.PathLike[str]) -> Path:
    """Write ``est`` (fitted) to ``path`` atomically."""
    import torch
    from sklearn.utils.validation import check_is_fitted

    from fairaudit.training import save_checkpoint

    check_is_fitted(est, "module_")
    state = {f"model.{k}": v for k, v in est.module_.state_dict().items()}
    state["x_mean"] = torch.as_tensor(np.asarray(est.x_mean_, np.float32))
    state["x_scale"] = torch.as_tensor(np.asarray(est.x_scale_, np.float32))
    fitted = {
        "n_features_in": est.n_features_in_,
        "targets": [t.to_dict() for t in est.targets_],
        "history": est.history_,
        "best_epoch": est.best_epoch_,
        "adversary_audit": est.adversary_audit_,
        "validation_split": est.validation_split_,
        "seed": est.seed_,
    }
    metadata = {
        "format": FORMAT,
        "params": json.dumps(_jsonable(est.get_params())),
        "fitted": json.dumps(_jsonable(fitted)),
    }
    return save_checkpoint(path, state, metadata)


def load_debiaser(
    cls: type[AdversarialVAEDebiaser], path: str | os.PathLike[str]
) -> AdversarialVAEDebiaser:
    """Rebuild a fitted debiaser from a file written by :func:`save_debiaser`."""
    from safetensors import safe_open

    from fairaudit import validate_params
    from fairaudit.training import load_checkpoint

    tensors = load_checkpoint(path)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an advvae checkpoint (format {metadata.get('format')!r}, "
            f"expected {FORMAT!r})"
        )
    params = validate_params(cls, json.loads(metadata["params"]))
    fitted = json.loads(metadata["fitted"])
    est = cls(**params)
    targets = [AttributeTarget.from_dict(t) for t in fitted["targets"]]
    model = est._build(int(fitted["n_features_in"]), targets)
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: weights do not match the stored configuration: {exc}"
        ) from exc
    est.module_ = model.eval()
    est.targets_ = targets
    est.n_features_in_ = int(fitted["n_features_in"])
    est.x_mean_ = tensors["x_mean"].numpy()
    est.x_scale_ = tensors["x_scale"].numpy()
    est.history_ = fitted["history"]
    est.best_epoch_ = int(fitted["best_epoch"])
    est.adversary_audit_ = fitted["adversary_audit"]
    est.validation_split_ = fitted["validation_split"]
    est.seed_ = int(fitted["seed"])
    est.device_ = "cpu"
    est.checkpoint_path_ = str(path)
    return est
