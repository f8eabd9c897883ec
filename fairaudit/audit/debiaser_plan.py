"""A debiaser arm: fit the debiaser on the training split, refit the downstream model on its output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from fairaudit.audit.arm import Arm, ArmPlan, plugin_blocks
from fairaudit.base import BaseDebiaser, BaseModel
from fairaudit.errors import PluginError
from fairaudit.results import ArmResult
from fairaudit.spec.models import Component

if TYPE_CHECKING:
    from fairaudit.audit.state import RunState


@dataclass(frozen=True)
class DebiaserPlan(ArmPlan):
    """The debiaser's representation of every split, and the downstream model refitted on it."""

    kind: ClassVar = "debiaser"
    family: ClassVar[str] = "debiasers"

    def run(self, state: RunState) -> list[Arm]:
        s = state.splits
        comp, name = self.component, self.name
        debiaser: BaseDebiaser = state.create("debiasers", comp)
        state.say_arm(name, f"fitting debiaser {comp.name!r}")
        attrs = s.train.sensitive
        state.log.timed(f"{name}.fit", lambda: debiaser.fit(s.train.inputs, s.train.y, sensitive_features=attrs))
        X_tr, y_tr, _sf_tr = debiaser.transform_train(s.train.inputs, s.train.y, sensitive_features=attrs)
        _same_rows(comp.name, "transform_train", len(X_tr), len(y_tr), " labels")
        X_te = _checked(comp.name, debiaser.transform(s.test.inputs), len(s.test))
        X_va = _checked(comp.name, debiaser.transform(s.val.inputs), len(s.val)) if s.val is not None else None
        model = self._head(state, np.asarray(X_tr).ndim)
        state.say_arm(name, "refitting the downstream model")
        scores_val, scores_test = state.log.timed(
            f"{name}.model", lambda: state.fit_predict(model, X_tr, y_tr, X_va, X_te))
        rep_train = _checked(comp.name, debiaser.transform(s.train.inputs), len(s.train))
        return [Arm(
            ArmResult(name=name, kind="debiaser", plugin=comp.name, params=dict(comp.params),
                      blocks=plugin_blocks(state, debiaser.report_blocks(), name)),
            scores_test=scores_test, scores_val=scores_val,
            repr_test=np.asarray(X_te).reshape(len(X_te), -1),
            repr_train=np.asarray(rep_train).reshape(len(rep_train), -1),
            repr_name=f"the debiaser's output ({int(np.prod(np.shape(X_te)[1:]))}-d)",
            y_train=s.train.y, sensitive_train=s.train.sensitive,
            predict_fn=lambda images: model.predict_proba(debiaser.transform(images)))]

    def _head(self, state: RunState, output_ndim: int) -> BaseModel:
        """The downstream model; a logistic head when the debiaser outputs features the spec's
        (image) model cannot take."""
        model = state.new_model()
        if output_ndim == 2 and "features" not in model.modalities:
            state.log.warn(f"arm {self.name!r}: {self.component.name!r} outputs features; the downstream "
                           f"{state.spec.model.name!r} model takes images, so a logistic head is used")
            model = state.new_model(Component(name="logistic"))
        return model


def _checked(plugin: str, out: np.ndarray, n: int) -> np.ndarray:
    """``out`` of ``transform`` when it has one row per input row (the conformance kit's check)."""
    _same_rows(plugin, "transform", len(out), n, "")
    return out


def _same_rows(plugin: str, method: str, got: int, expected: int, of: str) -> None:
    """The conformance kit's check, made by the runner too: one output row per input row."""
    if got != expected:
        raise PluginError(f"debiaser {plugin!r}: {method} returned {got} rows for {expected}{of}; a debiaser "
                          "maps each row to one row (a bug in the plugin)")
