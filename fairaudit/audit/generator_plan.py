"""A generator arm: fit the generator, then one arm per evaluation of the spec.

Evaluations, in the spec's order (the first keeps the arm's name, the others append theirs):
``train_on_synthetic`` (downstream model trained on generated images only), ``augment`` (real +
generated), ``counterfactual_augment`` (real training images plus their counterfactuals, same
labels) and ``counterfactuals`` (the baseline classifier judged on the generator's edits of the
test images).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fairaudit.audit.arm import Arm, ArmPlan, plugin_blocks
from fairaudit.audit.data_stage import test_metadata
from fairaudit.base import BaseGenerator
from fairaudit.data import AuditDataset
from fairaudit.errors import FairAuditError
from fairaudit.results import ArmResult, ImageBlock
from fairaudit.spec.models import GeneratorComponent
from fairaudit.training import synthetic_rows

if TYPE_CHECKING:
    from fairaudit.audit.state import RunState

SYNTHETIC = ("train_on_synthetic", "augment")


@dataclass(frozen=True)
class GeneratorPlan(ArmPlan):
    """Fit the generator once; evaluate it as the spec's ``evaluation`` lists."""

    component: GeneratorComponent
    kind: ClassVar = "generator"
    family: ClassVar[str] = "generators"

    def label(self, evaluation: str) -> str:
        """The arm name of ``evaluation``: the plan's name for the first, ``name (evaluation)`` after."""
        return self.component.label_of(evaluation)

    def run(self, state: RunState) -> list[Arm]:
        comp = self.component
        generator: BaseGenerator = state.create("generators", comp)
        state.say_arm(self.name, f"fitting generator {comp.name!r}")
        state.log.timed(f"{self.name}.fit", lambda: generator.fit(state.splits.train))
        built: dict[str, Arm | None] = {}
        synthetic = [e for e in comp.evaluation if e in SYNTHETIC]
        if synthetic:
            built.update(zip(synthetic, self._synthetic_arms(state, generator, synthetic), strict=True))
        if "counterfactual_augment" in comp.evaluation:
            built["counterfactual_augment"] = self._counterfactual_augment_arm(state, generator)
        if "counterfactuals" in comp.evaluation:
            built["counterfactuals"] = self._counterfactual_arm(state, generator)
        arms = [arm for e in comp.evaluation if (arm := built.get(e)) is not None]
        if not arms:
            raise FairAuditError(f"generator {self.name!r}: no evaluation could run (see the warnings)")
        # blocks last: they may describe the counterfactuals as well as the samples
        arms[0].result.blocks = plugin_blocks(state, generator.report_blocks(), arms[0].result.name) \
            + arms[0].result.blocks
        return arms

    def _result(self, label: str, **params: Any) -> ArmResult:
        return ArmResult(name=label, kind="generator", plugin=self.component.name,
                         params={**self.component.params, **params})

    # -- synthetic images
    def _synthetic_arms(self, state: RunState, generator: BaseGenerator, evaluations: list[str]) -> list[Arm]:
        s = state.splits
        n = self.component.n_synthetic or len(s.train)
        rows = synthetic_rows(s.train.y, s.train.sensitive, n, self.component.sampling,
                              attributes=list(state.spec.attributes), seed=state.spec.seed)
        y_syn = s.train.y[rows]
        sf_syn = s.train.sensitive.iloc[rows].reset_index(drop=True)
        state.say_arm(self.name, f"generating {n} images")
        synthetic = np.asarray(state.log.timed(f"{self.name}.generate", lambda: generator.generate(y_syn, sf_syn)),
                               dtype=np.float32)
        if synthetic.shape[1:] != np.asarray(s.train.inputs).shape[1:]:
            raise FairAuditError(f"generator {self.component.name!r} returned images of shape "
                                 f"{synthetic.shape[1:]}; the dataset's are {np.asarray(s.train.inputs).shape[1:]}")
        arms: list[Arm] = []
        for evaluation in evaluations:
            if evaluation == "train_on_synthetic":
                X_fit, y_fit = synthetic, y_syn
            else:
                X_fit, y_fit = np.concatenate([s.train.inputs, synthetic]), np.concatenate([s.train.y, y_syn])
            label = self.label(evaluation)
            state.say_arm(label, f"training the downstream model ({evaluation})")
            arms.append(self._trained_arm(state, label, X_fit, y_fit, evaluation=evaluation, n_synthetic=n,
                                             sampling=self.component.sampling))
        return arms

    def _trained_arm(self, state: RunState, label: str, X_fit: np.ndarray, y_fit: np.ndarray,
                     **params: Any) -> Arm:
        """The spec's downstream model trained on ``X_fit``, scored on the validation and test splits."""
        s = state.splits
        model = state.new_model()
        val_inputs = s.val.inputs if s.val is not None else None
        scores_val, scores_test = state.log.timed(
            f"{label}.model", lambda: state.fit_predict(model, X_fit, y_fit, val_inputs, s.test.inputs))
        return Arm(self._result(label, **params), scores_test=scores_test, scores_val=scores_val,
                   predict_fn=model.predict_proba)

    # -- counterfactuals
    def _can_edit(self, state: RunState, generator: BaseGenerator, evaluation: str) -> bool:
        if not generator.supports_counterfactuals:
            state.log.warn(f"generator {self.name!r}: {self.component.name!r} cannot edit images; "
                           f"the {evaluation!r} evaluation was skipped")
            return False
        if state.splits.test.images is None:
            state.log.warn(f"generator {self.name!r}: the dataset has no images; "
                           f"the {evaluation!r} evaluation was skipped")
            return False
        return True

    def _edit(self, state: RunState, generator: BaseGenerator, split: AuditDataset, label: str,
              which: str) -> np.ndarray:
        """``split``'s images with the spec's counterfactual factor flipped by ``generator``."""
        factor = self.component.counterfactual_factor
        edit = {"factor": factor, "metadata": test_metadata(split)}
        state.say_arm(self.name, f"editing {len(split)} {which} images ({factor!r} flipped)")
        cf = state.log.timed(f"{label}.counterfactual", lambda: generator.counterfactual(split.images, edit))
        cf = np.asarray(cf, dtype=np.float32)
        if cf.shape != np.asarray(split.images).shape:
            raise FairAuditError(f"generator {self.component.name!r} returned counterfactuals of shape {cf.shape} "
                                 f"for {which} images of shape {np.asarray(split.images).shape}")
        return cf

    def _counterfactual_augment_arm(self, state: RunState, generator: BaseGenerator) -> Arm | None:
        """Train the downstream model on the real training images plus their counterfactuals
        (same labels): the classifier sees each image with and without the factor."""
        if not self._can_edit(state, generator, "counterfactual_augment"):
            return None
        s = state.splits
        label = self.label("counterfactual_augment")
        cf_train = self._edit(state, generator, s.train, label, "training")
        X_fit = np.concatenate([np.asarray(s.train.images, dtype=np.float32), cf_train])
        y_fit = np.concatenate([s.train.y, s.train.y])
        state.say_arm(label, "training the downstream model on real + counterfactual images")
        return self._trained_arm(state, label, X_fit, y_fit, evaluation="counterfactual_augment",
                                 factor=self.component.counterfactual_factor)

    def _counterfactual_arm(self, state: RunState, generator: BaseGenerator) -> Arm | None:
        """The baseline classifier judged on the generator's edits of the test images."""
        if not self._can_edit(state, generator, "counterfactuals"):
            return None
        label = self.label("counterfactuals")
        factor = self.component.counterfactual_factor
        cf = self._edit(state, generator, state.splits.test, label, "test")
        arm = Arm(self._result(label, evaluation="counterfactuals", factor=factor),
                  predict_fn=lambda images: state.baseline_model().predict_proba(images),
                  counterfactuals={factor: cf})
        arm.result.blocks = [counterfactual_grid(state, label, factor, cf)]
        return arm


def counterfactual_grid(state: RunState, label: str, factor: str, cf: np.ndarray,
                        per_group: int = 2) -> ImageBlock:
    """Original / counterfactual / difference (/ oracle) for a few test images per group."""
    from fairaudit.imaging import difference_image, save_grid

    test = state.splits.test
    images = np.asarray(test.images, dtype=np.float32)
    oracle = state.oracle_counterfactuals().get(factor)
    attr = state.spec.attributes[0]
    groups = test.sensitive[attr].astype(str).to_numpy()
    rows, row_labels = [], []
    for group in sorted(set(groups)):
        for i in np.flatnonzero(groups == group)[:per_group]:
            row = [images[i], cf[i], difference_image(images[i], cf[i])]
            if oracle is not None:
                row += [oracle[i], difference_image(images[i], oracle[i])]
            rows.append(row)
            row_labels.append(f"{attr}={group}, y={int(test.y[i])}")
    columns = ["original", "counterfactual", "difference"] + (["oracle", "oracle diff."] if oracle is not None
                                                               else [])
    from fairaudit.audit.resume import safe_name

    path = state.run_dir / "figures" / f"{safe_name(label)}_counterfactuals.png"
    save_grid(path, rows, row_labels=row_labels, col_labels=columns)
    caption = (f"Test images with {factor!r} flipped by the generator; difference: grey = unchanged, "
               "light = brighter, dark = darker.")
    if oracle is not None:
        caption += " The oracle columns show the exact counterfactual the dataset renders (ground truth)."
    return ImageBlock(title=f"Counterfactuals ({factor} flipped)", path=str(path.relative_to(state.run_dir)),
                      caption=caption)
