"""The state of one audit run, explicit: what every arm plan and the metrics read.

Built once by :meth:`RunState.open` (plugins bound to the run's context, data loaded and split);
nothing is added to it later except the two caches below, each behind a method that says what
it does: the baseline model (:meth:`RunState.baseline_model`) and the oracle counterfactuals
(:meth:`RunState.oracle_counterfactuals`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fairaudit.audit.data_stage import load_and_split
from fairaudit.audit.recording import RunLog
from fairaudit.audit.splits import Splits
from fairaudit.base import BaseModel, RunContext, StatsConfig
from fairaudit.data import AuditDataset
from fairaudit.errors import FairAuditError
from fairaudit.plugins import PluginSet
from fairaudit.spec.loader import LoadedSpec
from fairaudit.spec.models import AuditSpec, Component
from fairaudit.spec.settings import stats_config

LOG = logging.getLogger("fairaudit")


@dataclass
class RunState:
    """Spec, plugins, run folder, run context, statistics, data and splits of one audit, with its
    log (console, warnings, timings)."""

    loaded: LoadedSpec
    plugins: PluginSet
    run_dir: Path
    context: RunContext
    stats: StatsConfig
    log: RunLog
    dataset: AuditDataset
    splits: Splits
    #: "arm k/N" of the arm being computed (console messages say where the run is).
    position: str = ""
    _baseline: BaseModel | None = field(default=None, repr=False)
    _oracle_cf: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, loaded: LoadedSpec, plugins: PluginSet, run_dir: Path, log: RunLog, *,
             progress: bool = True) -> RunState:
        """Resolve the device, load the dataset and split it: the state every arm starts from.
        An audit of given scores runs no model: its device is the CPU (and torch stays unimported)."""
        from fairaudit.audit.predictions_plan import provides_scores
        from fairaudit.training import resolve_device

        spec = loaded.spec
        context = RunContext(device="cpu", seed=spec.seed, work_dir=run_dir, progress=progress,
                             mixed_precision=spec.mixed_precision)
        if not provides_scores(spec, plugins):
            context.device = log.keeping_warnings(
                lambda: resolve_device(spec.device, on_missing_cuda=spec.on_missing_cuda))
        loader = create(plugins, context, "datasets", spec.dataset).resolve(loaded.base_dir)
        dataset, splits = load_and_split(loader, spec, log)
        return cls(loaded, plugins, run_dir, context, stats_config(spec), log, dataset, splits)

    # -- reading
    @property
    def spec(self) -> AuditSpec:
        return self.loaded.spec

    @property
    def warnings(self) -> list[str]:
        return self.log.warnings

    @property
    def timings(self) -> dict[str, float]:
        return self.log.timings

    def say_arm(self, arm_name: str, message: str) -> None:
        """A console line about one arm: ``arm 2/4 'advvae': <message>``."""
        self.log.say(f"{self.position} {arm_name!r}: {message}".lstrip())

    # -- plugins
    def create(self, family: str, comp: Component) -> Any:
        """A plugin instance with the component's params, bound to the run's context."""
        return create(self.plugins, self.context, family, comp)

    def new_model(self, comp: Component | None = None) -> BaseModel:
        """A fresh downstream model (the spec's, unless ``comp`` names another)."""
        return self.create("models", comp or self.spec.model).resolve(self.loaded.base_dir)

    def fit_predict(self, model: BaseModel, X_train: np.ndarray, y_train: np.ndarray,
                    X_val: np.ndarray | None, X_test: np.ndarray, *,
                    sample_weight: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """Fit ``model`` (with row weights, if given); its validation scores (if any) and its
        checked test scores."""
        if sample_weight is None:
            model.fit(X_train, y_train)
        else:
            model.fit(X_train, y_train, sample_weight=sample_weight)
        scores_val = model.predict_proba(X_val) if X_val is not None else None
        return scores_val, check_scores(model.predict_proba(X_test), model)

    # -- the two caches
    def keep_baseline(self, model: BaseModel) -> None:
        """Remember the fitted baseline model (counterfactual arms judge it on their edits)."""
        self._baseline = model

    def baseline_model(self) -> BaseModel:
        """The fitted baseline model.  When a resumed run kept the baseline arm from its files,
        the model was not trained in this process: it is fitted here, once, seeded as the
        baseline arm is (so it is the model the earlier run fitted), and the log says so."""
        if self._baseline is None:
            from fairaudit.audit.arm import seed_arm

            LOG.info("refitting the baseline model: the baseline arm was kept from the earlier run")
            self.log.say("refitting the baseline model (its arm was kept from the earlier run; "
                         "a counterfactual arm judges it)")
            seed_arm(self.spec.seed, 0)
            model = self.new_model()
            s = self.splits
            self.log.timed("baseline.refit", lambda: self.fit_predict(
                model, s.train.inputs, s.train.y, s.val.inputs if s.val is not None else None, s.test.inputs))
            self._baseline = model
        return self._baseline

    def oracle_counterfactuals(self) -> dict[str, np.ndarray]:
        """Oracle counterfactuals of the test images (``"oracle:<factor>"``), for every factor
        the dataset can flip; rendered once per audit."""
        if self._oracle_cf is None:
            self._oracle_cf = _render_oracles(self.splits.test, self.log)
        return self._oracle_cf


def create(plugins: PluginSet, context: RunContext, family: str, comp: Component) -> Any:
    """A plugin of ``family`` made from ``comp`` and bound to ``context``."""
    obj = plugins.registry(family).create(comp.name, comp.params)
    if hasattr(obj, "bind"):
        obj.bind(context)
    return obj


def check_scores(scores: np.ndarray, model: BaseModel) -> np.ndarray:
    """Scores as a flat float array; non-finite scores mean training diverged."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(scores)):
        raise FairAuditError(f"model {model.name!r} produced non-finite scores (NaN/inf); training diverged")
    return scores


def _render_oracles(test: AuditDataset, log: RunLog) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if test.oracle is None or test.images is None:
        return out
    for factor in test.meta.get("counterfactual_factors", []):
        try:
            out[factor] = np.asarray(test.counterfactual(factor), dtype=np.float32)
        except Exception as exc:  # an oracle that cannot flip a factor is not fatal
            log.warn(f"oracle counterfactual {factor!r} failed: {exc}")
    return out
