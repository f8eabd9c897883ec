"""A debiaser arm, by the debiaser's stage.

- ``pre``: fit the debiaser on the training split, refit the downstream model on its output
  (weighted by its ``sample_weight``, if any);
- ``in``: the debiaser trains the spec's downstream model itself under its constraint;
- ``post``: the debiaser adjusts the fitted baseline model's decisions given each row's groups.

In- and post-processing leave the representation as it is: the arm's probes read the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from fairaudit.audit.arm import Arm, ArmPlan, plugin_blocks
from fairaudit.audit.data_stage import probe_representation, representation_name
from fairaudit.audit.state import check_scores
from fairaudit.base import BaseDebiaser, BaseInProcessor, BaseModel, BasePostProcessor
from fairaudit.errors import PluginError
from fairaudit.results import ArmResult
from fairaudit.spec.models import Component

if TYPE_CHECKING:
    from fairaudit.audit.state import RunState


@dataclass(frozen=True)
class DebiaserPlan(ArmPlan):
    """The debiaser's arm: its scores on every split and the representation its probes read."""

    kind: ClassVar = "debiaser"
    family: ClassVar[str] = "debiasers"

    def run(self, state: RunState) -> list[Arm]:
        comp = self.component
        debiaser: BaseDebiaser = state.create("debiasers", comp)
        if isinstance(debiaser, BaseInProcessor):
            arm = self._in_processing(state, debiaser)
        elif isinstance(debiaser, BasePostProcessor):
            arm = self._post_processing(state, debiaser)
        elif debiaser.stage == "pre":
            arm = self._pre_processing(state, debiaser)
        else:
            raise PluginError(f"debiaser {comp.name!r} declares stage {debiaser.stage!r} but does not subclass "
                              f"BaseInProcessor ('in') or BasePostProcessor ('post')")
        arm.result.blocks = plugin_blocks(state, debiaser.report_blocks(), self.name)
        return [arm]

    # -- stages
    def _pre_processing(self, state: RunState, debiaser: BaseDebiaser) -> Arm:
        s, name = state.splits, self.name
        attrs = s.train.sensitive
        state.say_arm(name, f"fitting debiaser {self.component.name!r}")
        state.log.timed(f"{name}.fit", lambda: debiaser.fit(s.train.inputs, s.train.y, sensitive_features=attrs))
        X_tr, y_tr, sf_tr = debiaser.transform_train(s.train.inputs, s.train.y, sensitive_features=attrs)
        comp = self.component
        _same_rows(comp.name, "transform_train", len(X_tr), len(y_tr), " labels")
        weights = debiaser.sample_weight(y_tr, sensitive_features=sf_tr)
        X_te = _checked(comp.name, debiaser.transform(s.test.inputs), len(s.test))
        X_va = _checked(comp.name, debiaser.transform(s.val.inputs), len(s.val)) if s.val is not None else None
        model = self._head(state, np.asarray(X_tr).ndim)
        state.say_arm(name, "refitting the downstream model" + (" with sample weights" if weights is not None else ""))
        scores_val, scores_test = state.log.timed(
            f"{name}.model", lambda: state.fit_predict(model, X_tr, y_tr, X_va, X_te, sample_weight=weights))
        rep_train = _checked(comp.name, debiaser.transform(s.train.inputs), len(s.train))
        return Arm(
            self._result(), scores_test=scores_test, scores_val=scores_val,
            repr_test=np.asarray(X_te).reshape(len(X_te), -1),
            repr_train=np.asarray(rep_train).reshape(len(rep_train), -1),
            repr_name=f"the debiaser's output ({int(np.prod(np.shape(X_te)[1:]))}-d)",
            y_train=s.train.y, sensitive_train=s.train.sensitive,
            predict_fn=lambda images: model.predict_proba(debiaser.transform(images)))

    def _in_processing(self, state: RunState, debiaser: BaseInProcessor) -> Arm:
        s, name = state.splits, self.name
        model = state.new_model()
        state.say_arm(name, f"training {state.spec.model.name!r} under {self.component.name!r}")
        state.log.timed(f"{name}.fit", lambda: debiaser.fit_model(
            model, s.train.inputs, s.train.y, sensitive_features=s.train.sensitive))
        scores_val = debiaser.predict_proba(s.val.inputs) if s.val is not None else None
        scores_test = check_scores(debiaser.predict_proba(s.test.inputs), model)
        return Arm(self._result(), scores_test=scores_test, scores_val=scores_val,
                   repr_test=probe_representation(s.test), repr_train=probe_representation(s.train),
                   repr_name=representation_name(s.test),
                   y_train=s.train.y, sensitive_train=s.train.sensitive, predict_fn=debiaser.predict_proba)

    def _post_processing(self, state: RunState, debiaser: BasePostProcessor) -> Arm:
        s, name = state.splits, self.name
        model = state.baseline_model()
        state.say_arm(name, f"adjusting the baseline's decisions with {self.component.name!r}")
        state.log.timed(f"{name}.fit", lambda: debiaser.fit_model(
            model, s.train.inputs, s.train.y, sensitive_features=s.train.sensitive))
        scores_val = (debiaser.predict_proba(s.val.inputs, sensitive_features=s.val.sensitive)
                      if s.val is not None else None)
        scores_test = check_scores(debiaser.predict_proba(s.test.inputs, sensitive_features=s.test.sensitive), model)
        # decisions need each row's groups: edited images (counterfactuals) have none, so no predict_fn
        return Arm(self._result(), scores_test=scores_test, scores_val=scores_val,
                   repr_test=probe_representation(s.test), repr_train=probe_representation(s.train),
                   repr_name=representation_name(s.test), y_train=s.train.y, sensitive_train=s.train.sensitive)

    def _result(self) -> ArmResult:
        comp = self.component
        return ArmResult(name=self.name, kind="debiaser", plugin=comp.name, params=dict(comp.params))

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
