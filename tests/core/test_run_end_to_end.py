"""End-to-end audits through the CLI: run folder, failing arms, bad data, re-render, resume, exit codes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fairaudit.cli.app import app
from fairaudit.errors import ExitCode
from fairaudit.results import AuditResult

runner = CliRunner()

SPEC = textwrap.dedent("""\
    name: tiny
    title: "Tiny audit <script>alert(1)</script>"
    seed: 3
    dataset:
      name: synthetic_embeddings
      params: {n_samples: 600, dim: 32, seed: 3}
    attributes: [sex]
    model: {name: logistic}
    metrics: [group_metrics]
    statistics: {n_boot: 100, n_permutations: 100, min_group_size: 10}
    report: {formats: [html]}
    """)

BROKEN_PLUGIN = textwrap.dedent("""\
    import numpy as np
    from fairaudit import hookimpl, BaseDebiaser

    class Exploding(BaseDebiaser):
        name = "exploding"
        def fit(self, X, y, *, sensitive_features):
            raise RuntimeError("simulated failure inside fit")
        def transform(self, X):
            return X

    class NaNMaker(BaseDebiaser):
        name = "nan_maker"
        def fit(self, X, y, *, sensitive_features):
            self.fitted_ = True
            return self
        def transform(self, X):
            return np.full(np.shape(X), np.nan, dtype=np.float32)

    @hookimpl
    def fairaudit_register_debiasers(registry):
        registry.add(Exploding)
        registry.add(NaNMaker)
    """)


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def only_run_dir(out: Path) -> Path:
    dirs = [p for p in out.glob("*/*") if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_run_writes_a_complete_run_folder(tmp_path):
    spec = write(tmp_path, SPEC + "thresholds:\n  roc_auc: {min: 0.5}\n")
    result = run("run", str(spec), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "out")
    for name in ("spec.yaml", "manifest.json", "result.json", "report.html", "log.txt"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "spec.yaml").read_text() == spec.read_text()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["seed"] == 3 and manifest["device"] == "cpu"
    # the torch thread count chosen and why (tests run with FAIRAUDIT_NUM_THREADS unset: affinity or quota)
    threads = manifest["torch_threads"]
    assert threads["reason"] in ("affinity", "quota", "OMP_NUM_THREADS") and threads["threads"] >= 1
    if threads["reason"] == "affinity":
        assert threads["threads"] == len(__import__("os").sched_getaffinity(0))
    res = AuditResult.model_validate_json((run_dir / "result.json").read_text())
    base = res.arm("baseline")
    assert base is not None and base.status == "ok"
    auc = base.metric("roc_auc", "sex")
    assert auc is not None and 0.6 < auc.value <= 1 and auc.ci_low <= auc.value <= auc.ci_high
    assert {v.outcome for v in res.verdicts} == {"pass"}
    html = (run_dir / "report.html").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert not list(run_dir.rglob("*.tmp"))


def test_failing_arm_is_recorded_and_the_audit_goes_on(tmp_path):
    write(tmp_path, BROKEN_PLUGIN, "my_plugins.py")
    spec = write(tmp_path, SPEC + "plugins: [my_plugins.py]\ndebiasers: [exploding, nan_maker]\n")
    result = run("run", str(spec), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == ExitCode.INCOMPLETE, result.output  # the gate cannot judge a failed arm
    assert "cannot judge: arm 'exploding' failed: RuntimeError: simulated failure inside fit" in result.output
    run_dir = only_run_dir(tmp_path / "out")
    res = AuditResult.model_validate_json((run_dir / "result.json").read_text())
    arms = {a.name: a for a in res.arms}
    assert arms["baseline"].status == "ok"
    assert arms["exploding"].status == "failed"
    assert "simulated failure inside fit" in arms["exploding"].error
    assert arms["nan_maker"].status == "failed"
    assert "NaN" in arms["nan_maker"].error or "nan" in arms["nan_maker"].error.lower()
    assert "simulated failure inside fit" in (run_dir / "report.html").read_text()


def test_missing_attribute_is_a_clear_error(tmp_path):
    spec = write(tmp_path, SPEC.replace("attributes: [sex]", "attributes: [sexx]"))
    result = runner.invoke(app, ["run", str(spec), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 4
    assert "attribute 'sexx'" in result.output and "Did you mean 'sex'" in result.output
    assert "Traceback" not in result.output


def test_spec_typo_exits_4_with_position(tmp_path):
    spec = write(tmp_path, SPEC.replace("seed: 3\n", "sede: 3\n", 1))
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 4
    assert f"{spec}:3:1  sede  unknown field" in result.output


def test_validate_ok_is_fast_and_loads_no_data(tmp_path):
    spec = write(tmp_path, SPEC)
    result = run("validate", str(spec))
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def _csv_with_singleton_group(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(5)})
    frame["label"] = (frame["f0"] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    frame["sex"] = rng.choice(["F", "M"], size=n)
    frame.loc[7, "sex"] = "X"
    frame["patient"] = np.arange(n)
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


def _table_spec(csv: Path, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        name: table-audit
        dataset:
          name: table
          params: {{path: {csv.name}, target: label, sensitive: [sex], features: [f0, f1, f2, f3, f4],
                    patient_id: patient{extra}}}
        attributes: [sex]
        metrics: [group_metrics]
        statistics: {{n_boot: 50, n_permutations: 50}}
        report: {{formats: [html]}}
        """)


def test_group_with_one_member_is_flagged_not_judged(tmp_path):
    csv = _csv_with_singleton_group(tmp_path)
    spec = write(tmp_path, _table_spec(csv) + "thresholds:\n  equal_opportunity_difference: {max: 0.5}\n")
    result = run("run", str(spec), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code in (0, 1), result.output
    res = AuditResult.model_validate_json((only_run_dir(tmp_path / "out") / "result.json").read_text())
    assert any("'X'" in w and "too small" in w for w in res.warnings)
    eod = res.arm("baseline").metric("true_positive_rate", "sex")
    small = [g for g in eod.per_group if g.group == "X"]
    assert not small or small[0].too_small


def test_missing_column_in_table_names_file_and_column(tmp_path):
    csv = _csv_with_singleton_group(tmp_path)
    spec = write(tmp_path, _table_spec(csv).replace("target: label", "target: lable"))
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 4
    assert "lable" in result.output and "table.csv" in result.output


def test_empty_data_file_is_a_clear_error(tmp_path):
    csv = tmp_path / "table.csv"
    csv.write_text("")
    spec = write(tmp_path, _table_spec(csv))
    result = runner.invoke(app, ["run", str(spec), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 4
    assert "table.csv" in result.output and "Traceback" not in result.output


def test_report_re_renders_from_result_json_alone(tmp_path):
    spec = write(tmp_path, SPEC)
    assert run("run", str(spec), "-o", str(tmp_path / "out"), "-q").exit_code == 0
    run_dir = only_run_dir(tmp_path / "out")
    first = (run_dir / "report.html").read_text()
    (run_dir / "report.html").unlink()
    result = run("report", str(run_dir), "--format", "html")
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.html").read_text() == first


def test_resume_skips_finished_arms_and_gives_the_same_result(tmp_path):
    write(tmp_path, BROKEN_PLUGIN, "my_plugins.py")
    spec = write(tmp_path, SPEC + "plugins: [my_plugins.py]\ndebiasers: [nan_maker]\n")
    assert run("run", str(spec), "-o", str(tmp_path / "out"), "-q").exit_code == ExitCode.INCOMPLETE  # failed arm
    run_dir = only_run_dir(tmp_path / "out")
    before = json.loads((run_dir / "result.json").read_text())
    (run_dir / "result.json").unlink()
    next((run_dir / "arms").glob("01_*.json")).unlink()
    result = run("run", "--resume", str(run_dir), "-q")
    assert result.exit_code == ExitCode.INCOMPLETE, result.output
    after = json.loads((run_dir / "result.json").read_text())
    for key in ("arms", "verdicts"):
        a, b = json.dumps(before[key], sort_keys=True), json.dumps(after[key], sort_keys=True)
        assert _strip_timings(a) == _strip_timings(b)


def _strip_timings(text: str) -> object:
    data = json.loads(text)
    for arm in data if isinstance(data, list) else []:
        if isinstance(arm, dict):
            arm.pop("timings", None)
    return data


def test_failed_threshold_exits_1(tmp_path):
    spec = write(tmp_path, SPEC + "thresholds:\n  roc_auc: {min: 0.999}\n")
    result = run("run", str(spec), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output
    assert "baseline · roc_auc · all" in result.output  # an overall metric is judged once, for all rows


@pytest.mark.parametrize("command", [["plugins"], ["plugins", "--json"], ["schema"]])
def test_listing_commands(command):
    result = run(*command)
    assert result.exit_code == 0
    assert "logistic" in result.output


HALF_PLUGIN = textwrap.dedent("""\
    import numpy as np
    from fairaudit import hookimpl, BaseDebiaser

    class DropHalf(BaseDebiaser):
        name = "drop_half"
        def fit(self, X, y, *, sensitive_features):
            self.fitted_ = True
            return self
        def transform(self, X):
            out = np.array(X, dtype=np.float32, copy=True)
            out[:, ::2] = 0.0
            return out

    @hookimpl
    def fairaudit_register_debiasers(registry):
        registry.add(DropHalf)
    """)


def test_paired_changes_from_the_baseline_survive_a_resume(tmp_path):
    """Each mitigation's change from the baseline (paired bootstrap) equals the difference of
    the two arms' metrics; the test scores are kept beside the arm files, so a resumed audit
    pairs an arm finished earlier exactly as the uninterrupted one did."""
    write(tmp_path, HALF_PLUGIN, "half.py")
    spec = write(tmp_path, SPEC + "plugins: [half.py]\ndebiasers: [drop_half]\n")
    assert run("run", str(spec), "-o", str(tmp_path / "out"), "-q").exit_code == 0
    run_dir = only_run_dir(tmp_path / "out")
    before = AuditResult.model_validate_json((run_dir / "result.json").read_text())
    base, arm = before.arm("baseline"), before.arm("drop_half")
    assert base is not None and arm is not None and base.versus_baseline == []
    changes = {(c.metric, c.attribute): c for c in arm.versus_baseline}
    assert set(changes) == {("roc_auc", None), ("worst_group_auc", None), ("equal_opportunity_difference", "sex")}
    for (metric, attribute), change in changes.items():
        expected = arm.metric(metric, attribute or "sex").value - base.metric(metric, attribute or "sex").value
        assert change.value == pytest.approx(expected, abs=1e-12)
        assert change.ci_low <= change.value <= change.ci_high
    assert len(list((run_dir / "arms").glob("*.scores.npy"))) == 2
    (run_dir / "result.json").unlink()
    next((run_dir / "arms").glob("01_*.json")).unlink()
    assert run("run", "--resume", str(run_dir), "-q").exit_code == 0
    after = AuditResult.model_validate_json((run_dir / "result.json").read_text())
    assert after.arm("drop_half").versus_baseline == arm.versus_baseline  # type: ignore[union-attr]


def test_paired_changes_cover_intersections_and_a_bad_scores_file_only_warns(tmp_path):
    """Intersections get their own paired EOD change (equal to the displayed difference); a
    scores file of the wrong length found on resume is ignored with a warning, and the audit
    finishes."""
    write(tmp_path, HALF_PLUGIN, "half.py")
    text = SPEC.replace("attributes: [sex]", "attributes: [sex, age_group]\nintersections: [[sex, age_group]]")
    spec = write(tmp_path, text + "plugins: [half.py]\ndebiasers: [drop_half]\n")
    assert run("run", str(spec), "-o", str(tmp_path / "out"), "-q").exit_code in (0, 1)
    run_dir = only_run_dir(tmp_path / "out")
    result = AuditResult.model_validate_json((run_dir / "result.json").read_text())
    base, arm = result.arm("baseline"), result.arm("drop_half")
    eods = {c.attribute: c for c in arm.versus_baseline if c.metric == "equal_opportunity_difference"}
    for attribute, change in eods.items():
        displayed = arm.metric("equal_opportunity_difference", attribute).value
        assert change.value == pytest.approx(displayed - base.metric("equal_opportunity_difference", attribute).value)
    assert set(eods) == {"sex", "age_group", "sex&age_group"}
    np.save(next((run_dir / "arms").glob("00_*.scores.npy")), np.zeros(5))
    (run_dir / "result.json").unlink()
    next((run_dir / "arms").glob("01_*.json")).unlink()
    assert run("run", "--resume", str(run_dir), "-q").exit_code in (0, 1)
    resumed = AuditResult.model_validate_json((run_dir / "result.json").read_text())
    assert resumed.arm("drop_half").versus_baseline == []  # type: ignore[union-attr]
    assert any("'baseline': no saved test scores" in w for w in resumed.warnings)
