"""Run an audit: spec -> data -> splits -> arms (baseline, debiasers, generators) -> metrics
-> statistics -> ``result.json`` -> reports.  A failing arm is recorded and the audit goes on."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairaudit import atomic
from fairaudit.audit import comparisons, runfolder
from fairaudit.audit.splits import Splits, split_dataset
from fairaudit.audit.verdicts import adjust_p_values, judge_all
from fairaudit.base import (
    BaseDebiaser,
    BaseGenerator,
    BaseMetric,
    BaseModel,
    MetricContext,
    RunContext,
    StatsConfig,
)
from fairaudit.blocks import to_blocks
from fairaudit.data import AuditDataset
from fairaudit.errors import DataError, ExitCode, FairAuditError
from fairaudit.plugins import PluginSet, load_plugins
from fairaudit.results import ArmResult, AuditResult, Block, ImageBlock, MetricResult, read_result
from fairaudit.spec.loader import LoadedSpec, load_spec
from fairaudit.spec.models import AuditSpec, Component, GeneratorComponent
from fairaudit.training import world_size

LOG = logging.getLogger("fairaudit")
Say = Callable[[str], None]


@dataclass
class RunOutcome:
    run_dir: Path
    result: AuditResult
    reports: dict[str, Path] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        failed = any(v.outcome == "fail" for v in self.result.verdicts)
        return ExitCode.THRESHOLDS_FAILED if failed else ExitCode.OK


@dataclass
class Arm:
    """What an arm needs for its metrics: scores and (optionally) a representation."""

    result: ArmResult
    scores_test: np.ndarray | None = None
    scores_val: np.ndarray | None = None
    repr_test: np.ndarray | None = None
    repr_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    sensitive_train: pd.DataFrame | None = None
    predict_fn: Callable[[np.ndarray], np.ndarray] | None = None
    counterfactuals: dict[str, np.ndarray] = field(default_factory=dict)


# ---------------------------------------------------------------- data
def prepare_dataset(dataset: AuditDataset, spec: AuditSpec) -> tuple[AuditDataset, list[str]]:
    """Move attributes stored in ``extras`` into ``sensitive``; check every attribute is usable."""
    warnings_out: list[str] = []
    sensitive = dataset.sensitive.copy()
    for attr in spec.attributes:
        if attr in sensitive.columns:
            continue
        if attr in dataset.extras:
            sensitive[attr] = dataset.extras[attr]
            continue
        available = sorted({*dataset.sensitive.columns, *dataset.extras})
        import difflib

        close = difflib.get_close_matches(attr, available, n=2)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise DataError(f"attribute {attr!r} (spec field 'attributes') is not a column of dataset "
                        f"{dataset.name!r}.{hint} Available: {available}")
    for attr in spec.attributes:
        col = sensitive[attr]
        if col.isna().any():
            n_missing = int(col.isna().sum())
            warnings_out.append(f"attribute {attr!r}: {n_missing} rows have no value; they form the group "
                                "'(missing)'")
            sensitive[attr] = col.astype("object").where(col.notna(), "(missing)")
        counts = sensitive[attr].astype(str).value_counts()
        if len(counts) < 2:
            raise DataError(f"attribute {attr!r} has a single group ({counts.index[0]!r}); a fairness "
                            "audit needs at least two groups")
        for group, n in counts.items():
            if n < spec.statistics.min_group_size:
                warnings_out.append(f"attribute {attr!r}: group {group!r} has {n} row(s), below "
                                    f"min_group_size={spec.statistics.min_group_size}; too small to judge")
    prepared = AuditDataset(
        name=dataset.name, y=dataset.y, sensitive=sensitive, patient_ids=dataset.patient_ids,
        X=dataset.X, images=dataset.images, masks=dataset.masks, extras=dataset.extras,
        meta=dataset.meta, oracle=dataset.oracle, index=dataset.index,
    )
    y_values = set(np.unique(prepared.y).tolist())
    if not y_values <= {0, 1}:
        raise DataError(f"dataset {dataset.name!r}: the target must be binary 0/1, found values "
                        f"{sorted(y_values)[:5]}")
    return prepared, warnings_out


def probe_representation(dataset: AuditDataset) -> np.ndarray:
    """Features for representation probes: X, or images average-pooled to at most 32×32."""
    if dataset.X is not None:
        from fairaudit.outofcore import is_lazy

        if is_lazy(dataset.X):  # memory-mapped: probes read at most their max_rows rows
            return dataset.X
        return np.asarray(dataset.X, dtype=np.float32).reshape(len(dataset), -1)
    from fairaudit.lazy_images import iter_image_chunks

    n, c, h, w = dataset.images.shape
    factor = max(1, int(np.ceil(max(h, w) / 32)))
    h2, w2 = h // factor, w // factor
    blocks = [block[:, :, : h2 * factor, : w2 * factor].reshape(len(block), c, h2, factor, w2, factor).mean((3, 5))
              for block in iter_image_chunks(dataset.images)]  # chunked: streamed images never load whole
    return np.concatenate(blocks).reshape(n, -1) if blocks else np.zeros((0, c * h2 * w2), np.float32)


# ---------------------------------------------------------------- the audit
class Audit:
    """One audit run (see :func:`run_audit`)."""

    def __init__(self, loaded: LoadedSpec, plugins: PluginSet, run_dir: Path, say: Say):
        self.loaded, self.spec, self.plugins, self.run_dir, self.say = loaded, loaded.spec, plugins, run_dir, say
        self.warnings: list[str] = [f"plugin {f.name!r} failed to load: {f.error}" for f in plugins.failures]
        self.timings: dict[str, float] = {}
        self._oracle_cf: dict[str, np.ndarray] | None = None
        self.context = RunContext(device="cpu", seed=self.spec.seed, work_dir=run_dir,
                                  mixed_precision=self.spec.mixed_precision)
        self.stats = StatsConfig(
            n_boot=self.spec.statistics.n_boot, ci_level=self.spec.statistics.ci_level,
            min_group_size=self.spec.statistics.min_group_size,
            min_group_positives=self.spec.statistics.min_group_positives,
            n_permutations=self.spec.statistics.n_permutations, seed=self.spec.seed)

    # -- helpers
    def _timed(self, key: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.timings[key] = round(time.perf_counter() - start, 3)

    def _create(self, family: str, comp: Component) -> Any:
        obj = self.plugins.registry(family).create(comp.name, comp.params)
        if hasattr(obj, "bind"):
            obj.bind(self.context)
        return obj

    def _arm_file(self, index: int, name: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        return self.run_dir / "arms" / f"{index:02d}_{safe}.json"

    def _keeping_warnings(self, fn: Callable[[], Any], *, categories: tuple[type[Warning], ...] = (Warning,),
                          announce: bool = True) -> Any:
        """``fn()``, with the Python warnings it raises (of ``categories``) kept for the report
        and, when ``announce``, shown as they happen."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn()
        for w in caught:
            if issubclass(w.category, categories):
                self.warnings.append(str(w.message))
                if announce:
                    self.say(f"warning: {w.message}")
        return result

    def _blocks(self, raw: list[Any], arm: str) -> list[Block]:
        """An arm plugin's report content as typed blocks (unreadable ones become warnings)."""
        blocks, problems = to_blocks(_json_safe(raw), f"arm {arm!r}")
        self.warnings += problems
        return blocks

    # -- stages
    def load_data(self) -> Splits:
        from fairaudit.training import resolve_device

        self.context.device = self._keeping_warnings(
            lambda: resolve_device(self.spec.device, on_missing_cuda=self.spec.on_missing_cuda))
        loader = self._create("datasets", self.spec.dataset).resolve(self.loaded.base_dir)
        self.say(f"loading dataset {self.spec.dataset.name!r}")
        # e.g. missing group values, mixed bit depths: into the report too
        raw = self._keeping_warnings(lambda: self._timed("load_data", loader.load),
                                     categories=(UserWarning, RuntimeWarning))
        dataset, notes = prepare_dataset(raw, self.spec)
        self.warnings += notes
        self.dataset = dataset
        split = self.spec.split
        stratify = [a for a in split.stratify if a in dataset.sensitive.columns]
        self.splits = self._keeping_warnings(
            lambda: split_dataset(dataset, test_size=split.test_size, val_size=split.val_size, stratify=stratify,
                                  seed=split.seed if split.seed is not None else self.spec.seed),
            announce=False)
        return self.splits

    def new_model(self, comp: Component | None = None) -> BaseModel:
        return self._create("models", comp or self.spec.model)

    def _fit_predict(self, model: BaseModel, X_train: np.ndarray, y_train: np.ndarray,
                     X_val: np.ndarray | None, X_test: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        model.fit(X_train, y_train)
        scores_val = model.predict_proba(X_val) if X_val is not None else None
        return scores_val, _check_scores(model.predict_proba(X_test), model)

    def baseline(self) -> Arm:
        s = self.splits
        model = self.new_model()
        self.say(f"baseline: fitting {self.spec.model.name!r}")
        val_inputs = s.val.inputs if s.val is not None else None
        scores_val, scores_test = self._timed(
            "baseline", lambda: self._fit_predict(model, s.train.inputs, s.train.y, val_inputs, s.test.inputs))
        self.baseline_model = model
        return Arm(
            ArmResult(name="baseline", kind="baseline", plugin=self.spec.model.name,
                      params=dict(self.spec.model.params)),
            scores_test=scores_test, scores_val=scores_val,
            repr_test=probe_representation(s.test), repr_train=probe_representation(s.train),
            y_train=s.train.y, sensitive_train=s.train.sensitive, predict_fn=model.predict_proba)

    def debiaser_arm(self, comp: Component) -> Arm:
        s = self.splits
        debiaser: BaseDebiaser = self._create("debiasers", comp)
        name = comp.arm_name
        self.say(f"debiaser {name!r}: fitting {comp.name!r}")
        attrs = s.train.sensitive
        self._timed(f"{name}.fit", lambda: debiaser.fit(s.train.inputs, s.train.y, sensitive_features=attrs))
        X_tr, y_tr, _sf_tr = debiaser.transform_train(s.train.inputs, s.train.y, sensitive_features=attrs)
        X_te = debiaser.transform(s.test.inputs)
        X_va = debiaser.transform(s.val.inputs) if s.val is not None else None
        head_comp = self.spec.model
        model = self.new_model(head_comp)
        if np.asarray(X_tr).ndim == 2 and "features" not in model.modalities:
            head_comp = Component(name="logistic")
            model = self.new_model(head_comp)
            self.warnings.append(f"arm {name!r}: {comp.name!r} outputs features; the downstream "
                                 f"{self.spec.model.name!r} model takes images, so a logistic head is used")
        self.say(f"debiaser {name!r}: refitting the downstream model")
        scores_val, scores_test = self._timed(
            f"{name}.model", lambda: self._fit_predict(model, X_tr, y_tr, X_va, X_te))
        rep_train = debiaser.transform(s.train.inputs)
        return Arm(
            ArmResult(name=name, kind="debiaser", plugin=comp.name, params=dict(comp.params),
                      blocks=self._blocks(debiaser.report_blocks(), name)),
            scores_test=scores_test, scores_val=scores_val,
            repr_test=np.asarray(X_te).reshape(len(X_te), -1),
            repr_train=np.asarray(rep_train).reshape(len(rep_train), -1),
            y_train=s.train.y, sensitive_train=s.train.sensitive,
            predict_fn=lambda images: model.predict_proba(debiaser.transform(images)))

    def generator_arms(self, comp: GeneratorComponent) -> list[Arm]:
        """Fit the generator, then one arm per evaluation, in the spec's order (the first keeps
        the arm's name): a downstream model trained on synthetic images only, on real +
        synthetic images, on real images + their counterfactuals, and the counterfactual arm
        (the baseline classifier judged on the generator's edits of the test images)."""
        s = self.splits
        generator: BaseGenerator = self._create("generators", comp)
        name = comp.arm_name
        self.say(f"generator {name!r}: fitting {comp.name!r}")
        self._timed(f"{name}.fit", lambda: generator.fit(s.train))
        labels = {e: name if i == 0 else f"{name} ({e.replace('_', ' ')})" for i, e in enumerate(comp.evaluation)}
        built: dict[str, Arm | None] = {}
        synthetic_evals = [e for e in comp.evaluation if e in ("train_on_synthetic", "augment")]
        if synthetic_evals:
            built.update(zip(synthetic_evals, self._synthetic_arms(generator, comp, synthetic_evals, labels),
                             strict=True))
        if "counterfactual_augment" in comp.evaluation:
            built["counterfactual_augment"] = self._counterfactual_augment_arm(
                generator, comp, labels["counterfactual_augment"])
        if "counterfactuals" in comp.evaluation:
            built["counterfactuals"] = self._counterfactual_arm(generator, comp, labels["counterfactuals"])
        arms = [arm for e in comp.evaluation if (arm := built.get(e)) is not None]
        if not arms:
            raise FairAuditError(f"generator {name!r}: no evaluation could run (see the warnings)")
        # blocks last: they may describe the counterfactuals as well as the samples
        arms[0].result.blocks = self._blocks(generator.report_blocks(), name) + arms[0].result.blocks
        return arms

    def _synthetic_arms(self, generator: BaseGenerator, comp: GeneratorComponent,
                        evaluations: list[str], labels: dict[str, str]) -> list[Arm]:
        s = self.splits
        name = comp.arm_name
        n = comp.n_synthetic or len(s.train)
        rng = np.random.default_rng(self.spec.seed)
        rows = rng.choice(len(s.train), size=n, replace=n > len(s.train))
        y_syn = s.train.y[rows]
        sf_syn = s.train.sensitive.iloc[rows].reset_index(drop=True)
        self.say(f"generator {name!r}: generating {n} images")
        synthetic = np.asarray(self._timed(f"{name}.generate", lambda: generator.generate(y_syn, sf_syn)),
                               dtype=np.float32)
        if synthetic.shape[1:] != np.asarray(s.train.inputs).shape[1:]:
            raise FairAuditError(f"generator {comp.name!r} returned images of shape {synthetic.shape[1:]}; "
                                 f"the dataset's are {np.asarray(s.train.inputs).shape[1:]}")
        val_inputs = s.val.inputs if s.val is not None else None
        arms: list[Arm] = []
        for evaluation in evaluations:
            arm_name = labels[evaluation]
            if evaluation == "train_on_synthetic":
                X_fit, y_fit = synthetic, y_syn
            else:
                X_fit = np.concatenate([s.train.inputs, synthetic])
                y_fit = np.concatenate([s.train.y, y_syn])
            model = self.new_model()
            self.say(f"arm {arm_name!r}: training the downstream model ({evaluation})")
            scores_val, scores_test = self._timed(
                f"{arm_name}.model", lambda m=model, X=X_fit, y=y_fit: self._fit_predict(
                    m, X, y, val_inputs, s.test.inputs))
            arms.append(Arm(
                ArmResult(name=arm_name, kind="generator", plugin=comp.name,
                          params={**comp.params, "evaluation": evaluation, "n_synthetic": n}),
                scores_test=scores_test, scores_val=scores_val, predict_fn=model.predict_proba))
        return arms

    def _can_edit(self, generator: BaseGenerator, comp: GeneratorComponent, evaluation: str) -> bool:
        if not generator.supports_counterfactuals:
            self.warnings.append(f"generator {comp.arm_name!r}: {comp.name!r} cannot edit images; "
                                 f"the {evaluation!r} evaluation was skipped")
            return False
        if self.splits.test.images is None:
            self.warnings.append(f"generator {comp.arm_name!r}: the dataset has no images; "
                                 f"the {evaluation!r} evaluation was skipped")
            return False
        return True

    def _edit(self, generator: BaseGenerator, comp: GeneratorComponent, split: AuditDataset, label: str,
              which: str) -> np.ndarray:
        """``split``'s images with the spec's counterfactual factor flipped by ``generator``."""
        factor = comp.counterfactual_factor
        edit = {"factor": factor, "metadata": test_metadata(split)}
        self.say(f"generator {comp.arm_name!r}: editing {len(split)} {which} images ({factor!r} flipped)")
        cf = self._timed(f"{label}.counterfactual", lambda: generator.counterfactual(split.images, edit))
        cf = np.asarray(cf, dtype=np.float32)
        if cf.shape != np.asarray(split.images).shape:
            raise FairAuditError(f"generator {comp.name!r} returned counterfactuals of shape {cf.shape} for "
                                 f"{which} images of shape {np.asarray(split.images).shape}")
        return cf

    def _counterfactual_augment_arm(self, generator: BaseGenerator, comp: GeneratorComponent,
                                    label: str) -> Arm | None:
        """Train the downstream model on the real training images plus their counterfactuals
        (same labels): the classifier sees each image with and without the factor."""
        if not self._can_edit(generator, comp, "counterfactual_augment"):
            return None
        s = self.splits
        cf_train = self._edit(generator, comp, s.train, label, "training")
        X_fit = np.concatenate([np.asarray(s.train.images, dtype=np.float32), cf_train])
        y_fit = np.concatenate([s.train.y, s.train.y])
        model = self.new_model()
        self.say(f"arm {label!r}: training the downstream model on real + counterfactual images")
        val_inputs = s.val.inputs if s.val is not None else None
        scores_val, scores_test = self._timed(
            f"{label}.model", lambda: self._fit_predict(model, X_fit, y_fit, val_inputs, s.test.inputs))
        return Arm(
            ArmResult(name=label, kind="generator", plugin=comp.name,
                      params={**comp.params, "evaluation": "counterfactual_augment",
                              "factor": comp.counterfactual_factor}),
            scores_test=scores_test, scores_val=scores_val, predict_fn=model.predict_proba)

    def _counterfactual_arm(self, generator: BaseGenerator, comp: GeneratorComponent, label: str) -> Arm | None:
        if not self._can_edit(generator, comp, "counterfactuals"):
            return None
        s = self.splits
        factor = comp.counterfactual_factor
        cf = self._edit(generator, comp, s.test, label, "test")
        arm = Arm(
            ArmResult(name=label, kind="generator", plugin=comp.name,
                      params={**comp.params, "evaluation": "counterfactuals", "factor": factor}),
            predict_fn=self.baseline_predict, counterfactuals={factor: cf})
        arm.result.blocks = [self._counterfactual_grid(label, factor, cf)]
        return arm

    def _counterfactual_grid(self, label: str, factor: str, cf: np.ndarray, per_group: int = 2) -> ImageBlock:
        """Original / counterfactual / difference (/ oracle) for a few test images per group."""
        from fairaudit.imaging import difference_image, save_grid

        test = self.splits.test
        images = np.asarray(test.images, dtype=np.float32)
        oracle = self.oracle_counterfactuals().get(f"oracle:{factor}")
        attr = self.spec.attributes[0]
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
        safe = "".join(ch if ch.isalnum() else "_" for ch in label)
        path = self.run_dir / "figures" / f"{safe}_counterfactuals.png"
        save_grid(path, rows, row_labels=row_labels, col_labels=columns)
        caption = (f"Test images with {factor!r} flipped by the generator; difference: grey = unchanged, "
                   "light = brighter, dark = darker.")
        if oracle is not None:
            caption += " The oracle columns show the exact counterfactual the dataset renders (ground truth)."
        return ImageBlock(title=f"Counterfactuals ({factor} flipped)", path=str(path.relative_to(self.run_dir)),
                          caption=caption)

    def baseline_predict(self, images: np.ndarray) -> np.ndarray:
        """The baseline classifier's scores (refitted when a resumed run kept the baseline arm)."""
        if getattr(self, "baseline_model", None) is None:
            seed_arm(self.spec.seed, 0)
            self.baseline()
        return self.baseline_model.predict_proba(images)

    def oracle_counterfactuals(self) -> dict[str, np.ndarray]:
        """Oracle counterfactuals of the test images, for every factor the dataset can flip
        (rendered once per audit)."""
        if self._oracle_cf is not None:
            return self._oracle_cf
        test = self.splits.test
        out: dict[str, np.ndarray] = {}
        if test.oracle is not None and test.images is not None:
            for factor in test.meta.get("counterfactual_factors", []):
                try:
                    out[f"oracle:{factor}"] = np.asarray(test.counterfactual(factor), dtype=np.float32)
                except Exception as exc:  # an oracle that cannot flip a factor is not fatal
                    self.warnings.append(f"oracle counterfactual {factor!r} failed: {exc}")
        self._oracle_cf = out
        return out

    def metrics_for(self, arm: Arm, metrics: list[tuple[Component, BaseMetric]],
                    oracle_cf: dict[str, np.ndarray]) -> list[MetricResult]:
        s = self.splits
        ctx = MetricContext(
            y_true=s.test.y, sensitive=s.test.sensitive, patient_ids=s.test.patient_ids,
            y_score=arm.scores_test, threshold=self.spec.decision_threshold,
            attributes=list(self.spec.attributes), intersections=[list(c) for c in self.spec.intersections],
            stats=self.stats, features=arm.repr_test, features_train=arm.repr_train,
            y_train=arm.y_train, sensitive_train=arm.sensitive_train, extras=s.test.extras,
            val_y_true=s.val.y if s.val is not None else None, val_y_score=arm.scores_val,
            images=s.test.images, counterfactuals={**oracle_cf, **arm.counterfactuals},
            predict_fn=arm.predict_fn, artefact_oracle=s.test.meta.get("artefact_oracle"),
            context=self.context)
        results: list[MetricResult] = []
        for comp, metric in metrics:
            needs = set(metric.requires)
            if "features" in needs and arm.repr_test is None:
                continue
            if "counterfactuals" in needs and (not ctx.counterfactuals or ctx.predict_fn is None):
                continue
            if "scores" in needs and arm.scores_test is None:
                continue
            try:
                results += metric.compute(ctx)
            except Exception as exc:
                LOG.exception("metric %s failed on arm %s", comp.name, arm.result.name)
                results.append(MetricResult(metric=comp.arm_name, plugin=comp.name, status="error",
                                            notes=[f"{type(exc).__name__}: {exc}"]))
        return results


def test_metadata(split: AuditDataset) -> dict[str, np.ndarray]:
    """Per-image metadata a counterfactual editor may use for its source captions: the label,
    the sensitive attributes and 1-D extras (never patient identifiers)."""
    meta: dict[str, np.ndarray] = {col: split.sensitive[col].to_numpy() for col in split.sensitive.columns}
    for key, value in split.extras.items():
        arr = np.asarray(value)
        if arr.ndim == 1 and len(arr) == len(split):
            meta.setdefault(key, arr)
    meta["label"] = np.asarray(split.y)
    return meta


def seed_arm(seed: int, index: int) -> None:
    """Seed the global generators for arm ``index``, so a resumed arm draws what it would have."""
    from fairaudit.training import seed_everything

    seed_everything(seed + 1000 * index)


def _check_scores(scores: np.ndarray, model: BaseModel) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(scores)):
        raise FairAuditError(f"model {model.name!r} produced non-finite scores (NaN/inf); training diverged")
    return scores


def _json_safe(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=atomic._json_default))


def _failed(name: str, kind: str, comp: Component, exc: BaseException) -> ArmResult:
    LOG.error("arm %s failed: %s", name, exc)
    return ArmResult(name=name, kind=kind, plugin=comp.name, params=dict(comp.params), status="failed",  # type: ignore[arg-type]
                     error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))


# ---------------------------------------------------------------- entry point
def run_audit(
    spec_path: str | Path,
    *,
    output_dir: str | Path = "reports",
    resume: str | Path | None = None,
    formats: list[str] | None = None,
    say: Say | None = None,
) -> RunOutcome:
    """Run the audit described by ``spec_path`` (or resume the run folder ``resume``)."""
    say = say or (lambda msg: None)
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "spec.yaml").is_file():
            raise FairAuditError(f"cannot resume {run_dir}: no spec.yaml there (not a run folder)")
        manifest_file = run_dir / "manifest.json"
        source_dir = Path(json.loads(manifest_file.read_text())["spec_dir"]) if manifest_file.is_file() \
            else run_dir
        loaded = load_spec(run_dir / "spec.yaml")
        loaded.path = source_dir / "spec.yaml"  # local plugin files resolve against the original folder
        for stale in runfolder.remove_stale_temp_files(run_dir):
            say(f"removed {stale.name}, a half-written file of the interrupted run")
        plugins = load_plugins(local_files=tuple((loaded.base_dir / p).resolve() for p in loaded.spec.plugins))
        from fairaudit.spec.loader import check_components

        issues = check_components(loaded, plugins)
        if issues:
            from fairaudit.errors import SpecError

            raise SpecError(issues)
    else:
        from fairaudit.spec.loader import local_plugin_files

        plugins = load_plugins(local_files=local_plugin_files(spec_path))
        loaded = load_spec(spec_path, plugins=plugins)  # every problem at once, plugin parameters included
    from fairaudit.training import broadcast_object, init_distributed_from_env, is_distributed, is_main_process

    launched_here = not is_distributed() and init_distributed_from_env()  # torchrun / accelerate launch
    main = is_main_process()
    if resume is None:
        if main:
            run_dir = runfolder.new_run_dir(Path(output_dir), loaded.spec.name)
            atomic.write_text(run_dir / "spec.yaml", loaded.text)
        run_dir = Path(broadcast_object(str(run_dir) if main else None))
    handler = runfolder.attach_log(run_dir) if main else None
    try:
        return _run(loaded, plugins, run_dir, formats, say if main else (lambda msg: None),
                    resumed=resume is not None, writes=main)
    except BaseException as exc:
        if main:
            runfolder.mark_manifest(run_dir, status="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                                    error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if handler is not None:
            runfolder.detach_log(handler)
        if launched_here:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()


def _run(loaded: LoadedSpec, plugins: PluginSet, run_dir: Path, formats: list[str] | None, say: Say,
         *, resumed: bool, writes: bool = True) -> RunOutcome:
    """The audit proper.  Under torchrun every rank trains (DDP) and computes the metrics;
    only the main rank (``writes``) touches the run folder."""
    spec = loaded.spec
    started = time.perf_counter()
    audit = Audit(loaded, plugins, run_dir, say)
    LOG.info("%s audit %s in %s", "resuming" if resumed else "starting", spec.name, run_dir)
    manifest: dict[str, Any] = {
        "spec_name": spec.name, "spec_dir": str(loaded.base_dir.resolve()), "seed": spec.seed,
        "started": dt.datetime.now().isoformat(timespec="seconds"), "resumed": resumed,
        "environment": runfolder.environment(), "plugins": plugins.versions(),
        "plugin_failures": [{"name": f.name, "error": f.error} for f in plugins.failures],
        "git": runfolder.git_hash(loaded.base_dir), "status": "running",
    }
    if writes:
        runfolder.write_manifest(run_dir, manifest)
    from fairaudit.training import seed_everything

    seed_everything(spec.seed)
    splits = audit.load_data()
    manifest.update(device=audit.context.device, data_hash=runfolder.data_hash(audit.dataset))
    metrics = [(comp, audit._create("metrics", comp)) for comp in spec.metrics]
    oracle_cf = audit.oracle_counterfactuals()

    plan: list[tuple[str, str, Component | None]] = [("baseline", "baseline", None)]
    plan += [(c.arm_name, "debiaser", c) for c in spec.debiasers]
    plan += [(c.arm_name, "generator", c) for c in spec.generators]
    arm_results: list[ArmResult] = []
    test_scores: dict[str, np.ndarray] = {}  # for the paired changes from the baseline
    for index, (name, kind, comp) in enumerate(plan):
        saved = audit._arm_file(index, name)
        if resumed and saved.is_file():
            stored = [ArmResult.model_validate(a) for a in json.loads(saved.read_text())]
            arm_results += stored
            for r in stored:
                kept = comparisons.load_scores(comparisons.scores_path(saved, r.name), len(splits.test))
                if kept is not None:
                    test_scores[r.name] = kept
            say(f"arm {name!r}: already done, kept from the earlier run")
            continue
        seed_arm(spec.seed, index)
        try:
            if kind == "baseline":
                arms = [audit.baseline()]
            elif kind == "debiaser":
                assert comp is not None
                arms = [audit.debiaser_arm(comp)]
            else:
                assert isinstance(comp, GeneratorComponent)
                arms = audit.generator_arms(comp)
            for arm in arms:
                say(f"arm {arm.result.name!r}: computing metrics")
                arm.result.metrics = audit._timed(f"{arm.result.name}.metrics",
                                                  lambda a=arm: audit.metrics_for(a, metrics, oracle_cf))
            done = [a.result for a in arms]
            test_scores.update({a.result.name: a.scores_test for a in arms if a.scores_test is not None})
        except Exception as exc:
            if kind == "baseline":
                raise
            say(f"arm {name!r} FAILED: {type(exc).__name__}: {exc} (recorded; the audit goes on)")
            done = [_failed(name, kind, comp, exc)]  # type: ignore[arg-type]
        for r in done:
            r.timings = {k: v for k, v in audit.timings.items() if k.startswith(r.name)}
        if writes:
            for r in done:  # scores first: an arm file on disk means the arm is complete
                if r.name in test_scores:
                    comparisons.save_scores(comparisons.scores_path(saved, r.name), test_scores[r.name])
            atomic.write_json(saved, [r.model_dump(mode="json") for r in done])
        arm_results += done

    say("pairing every arm's change from the baseline (paired bootstrap)")
    audit.warnings += audit._timed(
        "paired_changes",
        lambda: comparisons.attach_paired_changes(
            arm_results, test_scores, splits.test, spec,
            [m for _, m in metrics], audit.stats),
    )
    adjust_p_values(arm_results, method=spec.statistics.multiple_testing)
    verdicts = judge_all(arm_results, spec.thresholds)
    audit.timings["total"] = round(time.perf_counter() - started, 3)
    result = AuditResult(
        name=spec.name, title=spec.title or spec.report.title or f"Fairness audit: {spec.name}",
        created=dt.datetime.now().isoformat(timespec="seconds"),
        dataset={"name": spec.dataset.name, "description": audit.dataset.meta.get("description", ""),
                 "params": dict(spec.dataset.params),
                 "summary": {k: v.summary() for k, v in splits.items()},
                 "hash": manifest["data_hash"]},
        settings={"seed": spec.seed, "n_boot": spec.statistics.n_boot, "ci_level": spec.statistics.ci_level,
                  "min_group_size": spec.statistics.min_group_size,
                  "min_group_positives": spec.statistics.min_group_positives,
                  "n_permutations": spec.statistics.n_permutations, "attributes": list(spec.attributes),
                  "intersections": [list(c) for c in spec.intersections],
                  "threshold": spec.decision_threshold, "device": audit.context.device,
                  "model": {"name": spec.model.name, "params": dict(spec.model.params)},
                  "split": spec.split.model_dump(),
                  "thresholds": {k: v.model_dump(exclude_none=True) for k, v in spec.thresholds.items()},
                  "multiple_testing": spec.statistics.multiple_testing},
        arms=arm_results, verdicts=verdicts, warnings=audit.warnings,
        provenance={"fairaudit_version": manifest["environment"]["packages"]["fairaudit"],
                    "python": manifest["environment"]["python"],
                    "platform": manifest["environment"]["platform"],
                    "packages": manifest["environment"]["packages"],
                    "plugins": plugins.versions(), "git": manifest["git"], "timings": audit.timings,
                    "data_hash": manifest["data_hash"], "device": audit.context.device,
                    "world_size": world_size(), "descriptions": plugin_descriptions(spec, plugins)},
        spec=spec.model_dump(mode="json"),
        spec_text=loaded.text,
    )
    outcome = RunOutcome(run_dir, result)
    if not writes:
        return outcome
    atomic.write_json(run_dir / "result.json", result.model_dump(mode="json"))
    wanted = formats or list(spec.report.formats)
    try:
        outcome.reports = render_reports(run_dir, wanted, plugins)
    except FairAuditError as exc:
        audit.warnings.append(str(exc))
        say(f"report rendering failed: {exc}")
    manifest.update(status="finished", finished=dt.datetime.now().isoformat(timespec="seconds"),
                    timings=audit.timings)
    runfolder.write_manifest(run_dir, manifest)
    return outcome


def plugin_descriptions(spec: AuditSpec, plugins: PluginSet) -> dict[str, str]:
    """Plugin name -> its one-line description, for every component the spec uses."""
    families: list[tuple[str, list[Component]]] = [
        ("datasets", [spec.dataset]), ("models", [spec.model]), ("debiasers", list(spec.debiasers)),
        ("generators", list(spec.generators)), ("metrics", list(spec.metrics))]
    out: dict[str, str] = {}
    for family, comps in families:
        for comp in comps:
            try:
                cls = plugins.registry(family).get(comp.name)
            except Exception:  # reported elsewhere; a description is not worth failing for
                continue
            text = str(getattr(cls, "description", "") or (cls.__doc__ or "").strip().split("\n")[0])
            out.setdefault(comp.name, text)
    return out


def render_reports(run_dir: Path, formats: list[str], plugins: PluginSet | None = None) -> dict[str, Path]:
    """(Re-)render the reports of ``run_dir`` from its ``result.json`` alone."""
    from fairaudit.report import write_reports

    plugins = plugins or load_plugins()
    sections = [plugins.report_sections.create(name) for name in plugins.report_sections.names()]
    result = read_result(run_dir / "result.json")
    return write_reports(result, run_dir, formats=tuple(formats), plugin_sections=sections)


