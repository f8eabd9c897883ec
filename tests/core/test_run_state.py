"""One concept, one place: the run context (instance-bound, explicit standalone default, the one
progress switch), statistics settings built from the spec once, the family/field map of
components, arm plans and the resume store's file names and fingerprint differences."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairaudit.audit.fingerprint import describe, differences
from fairaudit.audit.plans import BaselinePlan, DebiaserPlan, GeneratorPlan, plan_arms
from fairaudit.audit.resume import MAX_PART, safe_name
from fairaudit.base import Plugin, RunContext, StatsConfig
from fairaudit.builtin.metrics.group_metrics import GroupMetrics
from fairaudit.cli.app import app
from fairaudit.cli.run_cmd import _progress_wanted
from fairaudit.spec import schema
from fairaudit.spec.components import COMPONENT_FIELDS, SPEC_FAMILIES, normalise_component, raw_components
from fairaudit.spec.loader import load_spec_text
from fairaudit.spec.models import AuditSpec, StatisticsSpec
from fairaudit.spec.settings import result_settings, stats_config

SPEC = textwrap.dedent("""\
    name: state
    seed: 7
    dataset: {name: synthetic_embeddings, params: {n_samples: 200, dim: 8, seed: 7}}
    attributes: [sex]
    model: logistic
    debiasers: [{name: identity, label: first}, {name: identity, label: second}]
    generators: [{name: g, evaluation: [augment, counterfactuals, train_on_synthetic]}]
    metrics: [group_metrics]
    statistics: {n_boot: 33, ci_level: 0.9, min_group_size: 4, min_group_positives: 2, n_permutations: 11,
                 multiple_testing: none}
    """)


def spec() -> AuditSpec:
    return load_spec_text(SPEC).spec


# ---------------------------------------------------------------- the run context
def test_the_plugin_context_belongs_to_the_instance_and_defaults_to_an_explicit_standalone_one():
    import torch

    assert "_context" not in vars(Plugin)  # no class-level state shared by every plugin
    alone, bound = GroupMetrics(), GroupMetrics()
    run = RunContext(device="cpu", seed=5, work_dir=Path("/nowhere"), progress=False)
    bound.bind(run)
    assert bound.run_context() is run
    context = alone.run_context()
    assert context == RunContext.standalone()
    assert context.device == ("cuda" if torch.cuda.is_available() else "cpu")  # "auto", resolved
    assert (context.seed, context.work_dir, context.progress) == (0, None, True)
    assert alone.run_context() is context  # bound once, on first use
    assert GroupMetrics().run_context() is not context


@pytest.mark.parametrize(("quiet", "env", "expected"),
                         [(False, None, True), (True, None, False), (False, "1", False), (False, "0", True)])
def test_progress_is_read_from_the_cli_switches_only(monkeypatch, quiet, env, expected):
    if env is None:
        monkeypatch.delenv("FAIRAUDIT_NO_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("FAIRAUDIT_NO_PROGRESS", env)
    assert _progress_wanted(quiet) is expected


RECORDER = textwrap.dedent("""\
    from pathlib import Path
    from fairaudit import BaseDebiaser, hookimpl

    class Recorder(BaseDebiaser):
        name = "recorder"
        def __init__(self, log: str = ""):
            self.log = log
        def fit(self, X, y, *, sensitive_features):
            Path(self.log).write_text(str(self.run_context().progress))
            return self
        def transform(self, X):
            return X

    @hookimpl
    def fairaudit_register_debiasers(registry):
        registry.add(Recorder)
    """)


def test_quiet_turns_off_progress_in_every_plugin_through_the_run_context(tmp_path, monkeypatch):
    from fairaudit.audit.runner import run_audit

    monkeypatch.delenv("FAIRAUDIT_NO_PROGRESS", raising=False)
    (tmp_path / "recorder.py").write_text(RECORDER)
    seen = tmp_path / "progress.txt"
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(textwrap.dedent(f"""\
        name: progress
        dataset: {{name: synthetic_embeddings, params: {{n_samples: 200, dim: 8}}}}
        attributes: [sex]
        debiasers: [{{name: recorder, params: {{log: "{seen}"}}}}]
        statistics: {{n_boot: 10, n_permutations: 10, min_group_size: 5}}
        report: {{formats: [html]}}
        plugins: [recorder.py]
        """))
    result = CliRunner().invoke(app, ["run", str(spec_path), "-o", str(tmp_path / "quiet"), "-q"])
    assert result.exit_code == 0, result.output
    assert seen.read_text() == "False"
    run_audit(spec_path, output_dir=tmp_path / "api", progress=True)
    assert seen.read_text() == "True"


# ---------------------------------------------------------------- statistics and components
def test_statistics_settings_are_built_from_the_spec_in_one_place():
    s = spec()
    stats = stats_config(s)
    assert {f.name for f in dataclasses.fields(StatsConfig)} == {*StatisticsSpec.model_fields, "seed"}
    assert dataclasses.asdict(stats) == {**s.statistics.model_dump(), "seed": 7}
    settings = result_settings(s, stats, "cpu")
    assert {k: settings[k] for k in (*StatisticsSpec.model_fields, "seed")} == dataclasses.asdict(stats)
    assert settings["multiple_testing"] == "none" and settings["min_group_positives"] == 2


def test_components_map_families_to_spec_fields_once():
    s = spec()
    assert SPEC_FAMILIES == schema.SPEC_FAMILIES == ("datasets", "models", "debiasers", "generators", "metrics")
    assert [(family, path, comp.name) for family, path, comp in s.components()] == [
        ("datasets", "dataset", "synthetic_embeddings"), ("models", "model", "logistic"),
        ("debiasers", "debiasers.0", "identity"), ("debiasers", "debiasers.1", "identity"),
        ("generators", "generators.0", "g"), ("metrics", "metrics.0", "group_metrics")]
    assert [f.field for f in COMPONENT_FIELDS] == ["dataset", "model", "debiasers", "generators", "metrics"]
    assert normalise_component("x") == {"name": "x"} and normalise_component({"name": "y"}) == {"name": "y"}
    raw = {"dataset": "table", "model": {"name": "mlp", "params": {"max_epochs": 1}}, "metrics": ["a", 3, {"b": 1}]}
    assert list(raw_components(raw)) == [("datasets", ("dataset",), "table", {}),
                                         ("models", ("model",), "mlp", {"max_epochs": 1}),
                                         ("metrics", ("metrics", 0), "a", {})]


# ---------------------------------------------------------------- plans and the resume store
def test_arm_plans_follow_the_spec_order_with_one_type_per_kind():
    plans = plan_arms(spec())
    assert [(type(p), p.index, p.name) for p in plans] == [
        (BaselinePlan, 0, "baseline"), (DebiaserPlan, 1, "first"), (DebiaserPlan, 2, "second"),
        (GeneratorPlan, 3, "g")]
    generator = plans[3]
    assert isinstance(generator, GeneratorPlan)
    assert [generator.label(e) for e in generator.component.evaluation] == [
        "g", "g (counterfactuals)", "g (train on synthetic)"]
    assert plans[0].fatal and not plans[1].fatal
    assert plans[1].config()["component"] == {"name": "identity", "label": "first", "params": {}}


def test_file_names_are_bounded_and_never_shared():
    assert safe_name("baseline") == "baseline"
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    assert len(safe_name(long_a)) == MAX_PART and safe_name(long_a) != safe_name(long_b)
    assert safe_name("a b") != safe_name("a_b") and safe_name("a b").startswith("a_b-")
    assert safe_name("../../etc/passwd").count("/") == 0 and not safe_name(".hidden").startswith(".")


def test_fingerprint_differences_name_the_setting_that_changed():
    old = {"arm": {"component": {"params": {"lr": 0.1}}}, "data_hash": "ab", "seed": 1}
    new = json.loads(json.dumps(old))
    assert differences(old, new) == []
    new["arm"]["component"]["params"]["lr"] = 0.2
    new["seed"] = 2
    diffs = differences(old, new)
    assert diffs == ["arm.component.params.lr: 0.1 -> 0.2", "seed: 1 -> 2"]
    assert describe(diffs * 3).endswith("; and 2 more")
    assert differences(None, new) == ["fingerprint: None -> " + repr(new)[:57] + "..."]
