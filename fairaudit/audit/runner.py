"""Run an audit: spec -> data -> splits -> arm plans (baseline, debiasers, generators) -> metrics
-> statistics -> ``result.json`` -> reports.  A failing arm is recorded and the audit goes on.

The pieces live in their own modules: :mod:`~fairaudit.audit.state` (the run's explicit state),
:mod:`~fairaudit.audit.plans` (one plan type per arm kind), :mod:`~fairaudit.audit.metrics_stage`,
:mod:`~fairaudit.audit.resume` (arm files with fingerprints), :mod:`~fairaudit.audit.result_builder`
(the pure ``build_result``) and :mod:`~fairaudit.audit.runfolder` (files of the run folder).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fairaudit import atomic
from fairaudit.audit import comparisons, runfolder
from fairaudit.audit.arm import Arm, ArmPlan, json_safe
from fairaudit.audit.fingerprint import arm_fingerprint
from fairaudit.audit.metrics_stage import Metrics, compute_metrics, create_metrics
from fairaudit.audit.plans import plan_arms
from fairaudit.audit.predictions_file import write_predictions
from fairaudit.audit.predictions_plan import provides_scores, reference_arm
from fairaudit.audit.recording import RunLog, Say, elapsed_since, quiet
from fairaudit.audit.repeats import (
    ArmRuns,
    Repeat,
    attach_repeat_changes,
    plan_repeats,
    repeat_scope,
    summarise_over_seeds,
)
from fairaudit.audit.result_builder import build_result
from fairaudit.audit.resume import ResumeStore
from fairaudit.audit.state import RunState
from fairaudit.audit.verdicts import adjust_p_values, judge_all
from fairaudit.errors import DataError, ExitCode, FairAuditError, RunInterrupted, SpecError
from fairaudit.plugins import PluginSet, load_plugins
from fairaudit.results import ArmResult, AuditResult
from fairaudit.spec.compare_with import comparison_pairs
from fairaudit.spec.loader import LoadedSpec, check_components, load_spec
from fairaudit.spec.plugin_files import local_plugins

LOG = logging.getLogger("fairaudit")
Scores = dict[str, np.ndarray]


@dataclass
class RunOutcome:
    """A finished audit: its folder, result, the reports written, and a rendering error if any."""

    run_dir: Path
    result: AuditResult
    reports: dict[str, Path] = field(default_factory=dict)
    report_error: str | None = None

    @property
    def unjudged(self) -> list[str]:
        """Why the gate cannot judge: each failed arm, each threshold without a verdict."""
        out = [f"arm {a.name!r} failed: {a.error}" for a in self.result.arms if a.status == "failed"]
        out += [f"threshold {v.metric!r} on arm {v.arm!r}" + (f" ({v.attribute})" if v.attribute else "")
                + f": no verdict; {v.reason}" for v in self.result.verdicts if v.outcome == "missing"]
        judged = {v.metric for v in self.result.verdicts}
        out += [f"threshold {name!r}: no arm was judged (do its 'arms' name arms of this audit?)"
                for name in self.result.settings.thresholds if name not in judged]
        return out

    @property
    def exit_code(self) -> ExitCode:
        """1 when a threshold failed; else 6 when the gate cannot judge; else 7 when a report
        failed to render; else 0."""
        if any(v.outcome == "fail" for v in self.result.verdicts):
            return ExitCode.THRESHOLDS_FAILED
        if self.unjudged:
            return ExitCode.INCOMPLETE
        return ExitCode.REPORT_FAILED if self.report_error else ExitCode.OK


# ---------------------------------------------------------------- entry point
def run_audit(
    spec_path: str | Path | None,
    *,
    output_dir: str | Path = "reports",
    resume: str | Path | None = None,
    formats: list[str] | None = None,
    say: Say | None = None,
    progress: bool = True,
    base_dir: str | Path | None = None,
    allow_local_plugins: bool = False,
) -> RunOutcome:
    """Run the audit described by ``spec_path`` (or resume the run folder ``resume``).

    ``say`` receives the console lines; ``progress`` is the run's one progress switch (set in
    every plugin's :class:`~fairaudit.base.RunContext`).  ``base_dir`` is the folder relative
    paths of the spec (data, ``plugins:``) resolve against (default: the spec's folder).
    Local plugin files are loaded only from inside that folder's tree (for ``resume``: the
    folder the run recorded) unless ``allow_local_plugins`` (a local plugin is code).
    SIGTERM is handled like Ctrl-C: the manifest says ``interrupted`` and
    :class:`~fairaudit.errors.RunInterrupted` is raised.
    """
    say = say or quiet
    previous: dict[str, Any] | None = None
    run_dir = Path(resume) if resume is not None else None
    if run_dir is not None:
        loaded, plugins, previous = reopen_run(run_dir, say, allow_local_plugins=allow_local_plugins)
    elif spec_path is not None:
        files = local_plugins(spec_path, root=base_dir, allow_outside=allow_local_plugins).paths
        plugins = load_plugins(local_files=files)
        loaded = load_spec(spec_path, plugins=plugins)  # every problem at once, plugin parameters included
        if base_dir is not None:
            loaded.path = Path(base_dir) / Path(spec_path).name
    else:
        raise FairAuditError("give a spec file, or a run folder to resume")
    with _distributed() as main:
        run_dir = run_dir if run_dir is not None else _new_run_dir(Path(output_dir), loaded, main)
        log = RunLog(say if main else quiet, [f"plugin {f.name!r} failed to load: {f.error}" for f in plugins.failures])
        with _recorded(run_dir, main, allow_local_plugins), _sigterm_as_interrupt():
            audit = _Audit(loaded, plugins, run_dir, log, previous=previous, resumed=resume is not None,
                           writes=main, progress=progress)
            return audit.run(formats)


def reopen_run(run_dir: Path, say: Say, *, allow_local_plugins: bool = False
               ) -> tuple[LoadedSpec, PluginSet, dict[str, Any] | None]:
    """The spec, plugins and previous manifest of a run folder to resume, after checking the
    folder: no links inside, a readable manifest and (if any) a readable ``result.json``.  Its
    local plugin files are loaded under ``run``'s rule, against the spec folder the manifest
    records (never from inside the run folder) unless ``allow_local_plugins``."""
    if not (run_dir / "spec.yaml").is_file():
        raise FairAuditError(f"cannot resume {run_dir}: no spec.yaml there (not a run folder)")
    runfolder.refuse_links(run_dir)
    previous = runfolder.read_manifest(run_dir)
    if (run_dir / "result.json").exists():
        runfolder.read_result(run_dir)  # a truncated one is an error, never silently replaced
    loaded = load_spec(run_dir / "spec.yaml")
    source_dir = Path(previous["spec_dir"]) if previous else run_dir
    loaded.path = source_dir / "spec.yaml"  # local plugin files resolve against the original folder
    for stale in runfolder.remove_stale_temp_files(run_dir):
        say(f"removed {stale.name}, a half-written file of the interrupted run")
    files = local_plugins(run_dir / "spec.yaml", root=source_dir, allow_outside=allow_local_plugins,
                          run_dir=run_dir).paths
    plugins = load_plugins(local_files=files)
    issues = check_components(loaded, plugins)
    if issues:
        raise SpecError(issues)
    return loaded, plugins, previous


def render_reports(run_dir: Path, formats: list[str], plugins: PluginSet | None = None) -> dict[str, Path]:
    """(Re-)render the reports of ``run_dir`` from its ``result.json`` alone."""
    from fairaudit.report import write_reports

    plugins = plugins or load_plugins()
    sections = [plugins.report_sections.create(name) for name in plugins.report_sections.names()]
    result = runfolder.read_result(run_dir)
    return write_reports(result, run_dir, formats=tuple(formats), plugin_sections=sections)


# ---------------------------------------------------------------- the audit proper
class _Audit:
    """One run: the flat sequence of stages.  Under torchrun every rank trains (DDP) and
    computes the metrics; only the main rank (``writes``) touches the run folder."""

    def __init__(self, loaded: LoadedSpec, plugins: PluginSet, run_dir: Path, log: RunLog, *,
                 previous: dict[str, Any] | None, resumed: bool, writes: bool, progress: bool):
        self.loaded, self.plugins, self.run_dir, self.log = loaded, plugins, run_dir, log
        self.previous, self.resumed, self.writes, self.progress = previous, resumed, writes, progress
        self.manifest = _start_manifest(loaded, plugins, previous, resumed=resumed)

    def run(self, formats: list[str] | None) -> RunOutcome:
        spec = self.loaded.spec
        started = time.perf_counter()
        LOG.info("%s audit %s in %s", "resuming" if self.resumed else "starting", spec.name, self.run_dir)
        trains = not provides_scores(spec, self.plugins)  # given scores: no torch at all
        if trains:
            self.manifest["torch_threads"] = _configure_threads(self.log)
        self._write_manifest()
        from fairaudit.training import seed_everything

        seed_everything(spec.seed, with_torch=trains)
        state = RunState.open(self.loaded, self.plugins, self.run_dir, self.log, progress=self.progress)
        data_hash = runfolder.data_hash(state.dataset)
        _check_same_data(self.previous, data_hash, self.run_dir, spec.dataset.name)
        self.manifest.update(device=state.context.device, data_hash=data_hash)
        self._write_manifest()
        metrics = create_metrics(state)
        state.oracle_counterfactuals()  # rendered once, before any arm is seeded
        runs = self._all_arms(state, metrics, data_hash)
        result = self._judge(state, runs, metrics, data_hash, started)
        return self._finish(result, formats or list(spec.report.formats))

    def _all_arms(self, state: RunState, metrics: Metrics, data_hash: str) -> list[ArmRuns]:
        """Every plan, each repeat of it (``repeats: N``) kept from the earlier run or computed."""
        plans = plan_arms(state.spec, state.dataset)
        store = ResumeStore(self.run_dir, len(state.splits.test))
        trains = state.dataset.scores is None  # given scores: no model is created at all
        model_files = runfolder.file_digests(state.new_model().input_files()) if trains else {}  # e.g. weights
        runs: list[ArmRuns] = []
        for plan in plans:
            state.position = f"arm {plan.index + 1}/{len(plans)}"
            fingerprint = json_safe(arm_fingerprint(plan, state.spec, data_hash, self.plugins, model_files))
            done = ArmRuns(plan, plan_repeats(plan, state.spec))
            for repeat in done.repeats:
                if repeat.n > 1:
                    state.say_arm(plan.name, repeat.describe())
                with repeat_scope(state, repeat):
                    done.add(*self._repeat(state, store, plan, repeat, repeat.fingerprint(fingerprint), metrics))
            runs.append(done)
        state.position = ""
        return runs

    def _repeat(self, state: RunState, store: ResumeStore, plan: ArmPlan, repeat: Repeat,
                fingerprint: dict[str, Any], metrics: Metrics) -> tuple[list[ArmResult], Scores]:
        """One repeat of ``plan``: kept from the earlier run (``--resume``), or computed and saved."""
        kept = self._kept(state, store, plan, fingerprint, repeat) if self.resumed else None
        if kept is not None:
            return kept
        done, done_scores, ran = self._computed(state, plan, metrics, repeat.seed)
        if self.writes:  # scores first: an arm file on disk means the arm is complete
            if repeat.k == 0:
                self._write_predictions(state, ran)
            store.save(plan, fingerprint, done, done_scores, repeat.k)
        return done, done_scores

    def _write_predictions(self, state: RunState, arms: list[Arm]) -> None:
        """Each scored arm's row-level predictions (``arms/<arm>.predictions.parquet``)."""
        for arm in arms:
            if arm.scores_test is not None:
                state.log.timed(f"{arm.result.name}.predictions_file", lambda a=arm: write_predictions(
                    self.run_dir, a, state.splits, state.spec.decision_threshold))

    def _kept(self, state: RunState, store: ResumeStore, plan: ArmPlan, fingerprint: dict[str, Any],
              repeat: Repeat) -> tuple[list[ArmResult], Scores] | None:
        """The plan's arms from the earlier run, when its file is readable and its fingerprint holds."""
        found = store.load(plan, fingerprint, repeat.k)
        if found.status == "stale":
            state.say_arm(plan.name, f"recomputing: {found.reason}")
            state.log.warn(f"arm {plan.name!r} was recomputed on resume: {found.reason}")
        if found.status != "kept":
            return None
        state.say_arm(plan.name, "already done, kept from the earlier run")
        for r in found.results:  # the Timings table covers kept arms too
            state.timings.update(r.timings)
        return found.results, found.scores

    def _computed(self, state: RunState, plan: ArmPlan, metrics: Metrics,
                  seed: int) -> tuple[list[ArmResult], Scores, list[Arm]]:
        """Run the plan (global generators seeded with ``seed``) and every metric on its arms:
        their results, test scores and the arms themselves; a failure is recorded (unless fatal)."""
        from fairaudit.training import seed_everything

        seed_everything(seed, with_torch=plan.needs_torch)
        try:
            arms = plan.run(state)
            for arm in arms:
                state.say_arm(arm.result.name, "computing metrics")
                arm.result.metrics = state.log.timed(f"{arm.result.name}.metrics",
                                                     lambda a=arm: compute_metrics(state, a, metrics))
        except Exception as exc:
            if plan.fatal:
                raise
            state.say_arm(plan.name, f"FAILED: {type(exc).__name__}: {exc} (recorded; the audit goes on)")
            failed = plan.failed(exc)
            failed.timings = state.log.timings_of(plan.name)
            return [failed], {}, []
        for arm in arms:
            arm.result.timings = state.log.timings_of(arm.result.name)
        scores = {a.result.name: a.scores_test for a in arms if a.scores_test is not None}
        return [a.result for a in arms], scores, arms

    def _judge(self, state: RunState, runs: list[ArmRuns], metrics: Metrics, data_hash: str,
               started: float) -> AuditResult:
        """Paired changes (of every repeat), the summaries over seeds, adjusted p-values and
        verdicts; then the result."""
        from fairaudit.training import world_size

        spec = state.spec
        reference = reference_arm(state.dataset)
        arms: list[ArmResult] = []
        scores: Scores = {}
        for done in runs:
            first, first_scores = done.first()
            arms += first
            scores.update(first_scores)

        pairs = comparison_pairs(spec)  # arm -> the arm its entry names in compare_with
        measures = [m for _, m in metrics]

        def pairing(some: list[ArmResult], their_scores: Scores) -> list[str]:
            test = state.splits.test
            found = comparisons.attach_paired_changes(some, their_scores, test, spec, measures, state.stats,
                                                      reference=reference)
            return found + comparisons.attach_named_changes(some, their_scores, test, spec, measures, state.stats,
                                                            pairs)

        state.log.say(f"pairing every arm's change from {reference!r} (paired bootstrap)"
                      + (", and from the arms named in compare_with" if pairs else ""))
        state.warnings.extend(state.log.timed("paired_changes", lambda: pairing(arms, scores)))
        later = attach_repeat_changes(runs, reference, pairing, also=set(pairs.values()))
        state.warnings.extend(w for w in later + summarise_over_seeds(runs, state.stats.ci_level)
                              if w not in state.warnings)
        adjust_p_values(arms, method=state.stats.multiple_testing)
        verdicts = judge_all(arms, spec.thresholds, ci_level=state.stats.ci_level)
        state.timings["total"] = elapsed_since(started)
        env = self.manifest["environment"]
        return build_result(state, arms, verdicts, data_hash=data_hash, environment=env, git=self.manifest["git"],
                            threads=self.manifest.get("torch_threads", {}),
                            world_size=world_size(), created=_now())

    def _finish(self, result: AuditResult, formats: list[str]) -> RunOutcome:
        """Write ``result.json``, render the reports, close the manifest."""
        outcome = RunOutcome(self.run_dir, result)
        if not self.writes:
            return outcome
        atomic.write_json(self.run_dir / "result.json", result.model_dump(mode="json"))
        try:
            outcome.reports = render_reports(self.run_dir, formats, self.plugins)
        except Exception as exc:  # result.json is kept: `fairaudit report RUN_DIR` renders it later
            LOG.exception("report rendering failed")
            outcome.report_error = f"{type(exc).__name__}: {exc}"
        status = "report_failed" if outcome.report_error else "finished"
        self.manifest.update(status=status, finished=_now(), timings=result.provenance.timings)
        if outcome.report_error:
            self.manifest["error"] = outcome.report_error
        self._write_manifest()
        return outcome

    def _write_manifest(self) -> None:
        if self.writes:
            runfolder.write_manifest(self.run_dir, self.manifest)


# ---------------------------------------------------------------- helpers
def _configure_threads(log: RunLog) -> dict[str, Any]:
    """Size torch's intra-op threads from the CPUs this process may use (``FAIRAUDIT_NUM_THREADS``
    overrides); say it, and return it for the manifest and the provenance."""
    from fairaudit.threads import configure_torch_threads

    try:
        choice = configure_torch_threads()
    except ValueError as exc:  # a bad FAIRAUDIT_NUM_THREADS
        raise FairAuditError(str(exc)) from None
    log.say(choice.describe())
    return choice.as_dict()


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


def _start_manifest(loaded: LoadedSpec, plugins: PluginSet, previous: dict[str, Any] | None, *,
                    resumed: bool) -> dict[str, Any]:
    """The manifest at the start of a run; a resumed run keeps the data hash it was computed on."""
    spec = loaded.spec
    manifest: dict[str, Any] = {
        "spec_name": spec.name, "spec_dir": str(loaded.base_dir.resolve()), "seed": spec.seed,
        "started": _now(), "resumed": resumed,
        "environment": runfolder.environment(), "plugins": plugins.versions(),
        "plugin_failures": [{"name": f.name, "error": f.error} for f in plugins.failures],
        "git": runfolder.git_hash(loaded.base_dir), "status": "running",
    }
    if previous is not None and previous.get("data_hash"):
        manifest["data_hash"] = previous["data_hash"]
    return manifest


def _check_same_data(previous: dict[str, Any] | None, data_hash: str, run_dir: Path, dataset: str) -> None:
    """Resuming on other data would mix two datasets' results in one report: refuse."""
    recorded = (previous or {}).get("data_hash")
    if recorded and recorded != data_hash:
        raise DataError(f"the data changed since this run: {run_dir} was computed on data with hash {recorded}, "
                        f"dataset {dataset!r} now gives {data_hash}; resuming would mix results of two datasets. "
                        "Start a new run (fairaudit run SPEC) instead.")


def _new_run_dir(output_dir: Path, loaded: LoadedSpec, main: bool) -> Path:
    """A fresh run folder with the spec copied in (created by the main rank, shared with the others)."""
    from fairaudit.training import broadcast_object

    run_dir = None
    if main:
        run_dir = runfolder.new_run_dir(output_dir, loaded.spec.name)
        atomic.write_text(run_dir / "spec.yaml", loaded.text)
    return Path(broadcast_object(str(run_dir) if main else None))


@contextlib.contextmanager
def _distributed() -> Iterator[bool]:
    """Join a torchrun / accelerate launch process group when launched by one; yields whether
    this is the main process (the one that writes)."""
    from fairaudit.training import init_distributed_from_env, is_distributed, is_main_process

    launched_here = not is_distributed() and init_distributed_from_env()
    try:
        yield is_main_process()
    finally:
        if launched_here:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()


@contextlib.contextmanager
def _recorded(run_dir: Path, main: bool, allow_local_plugins: bool = False) -> Iterator[None]:
    """Log to the run folder; on an error or an interrupt, the manifest says so."""
    handler = runfolder.attach_log(run_dir) if main else None
    try:
        yield
    except KeyboardInterrupt as exc:
        if main:
            runfolder.mark_manifest(run_dir, status="interrupted", error=f"{type(exc).__name__}: {exc}")
        raise RunInterrupted(run_dir, str(exc) or "interrupted", allow_local_plugins=allow_local_plugins) from exc
    except BaseException as exc:
        if main:
            runfolder.mark_manifest(run_dir, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if handler is not None:
            runfolder.detach_log(handler)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's or ``kill``'s stop) ends the run as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
