"""``compare_with``: an arm compared with another named arm of the same audit (besides the
baseline), validated before any training and computed like the change from the baseline."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fairaudit.cli.app import app
from fairaudit.errors import ExitCode
from fairaudit.results import AuditResult, read_result

runner = CliRunner()

SPEC = textwrap.dedent("""\
    name: named
    seed: 5
    dataset:
      name: synthetic_embeddings
      params: {n_samples: 500, dim: 16, seed: 5}
    attributes: [sex]
    model: {name: logistic}
    debiasers:
      - name: mean_projection
        label: projection
        compare_with: {target}
      - name: leace
    metrics: [group_metrics]
    statistics: {n_boot: 80, n_permutations: 10, min_group_size: 10}
    report: {formats: [html]}
    """)


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def spec_file(tmp_path: Path, target: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("{target}", target), encoding="utf-8")
    return path


@pytest.mark.parametrize(("target", "words"), [
    ("leaec", "arm 'leaec' is not an arm of this audit"),
    ("projection", "this entry's own arm 'projection'"),
    ("baseline", "'baseline' is implicit"),
])
def test_validate_refuses_a_reference_that_is_unknown_itself_or_the_baseline(tmp_path, target, words):
    result = cli("validate", str(spec_file(tmp_path, target)))
    assert result.exit_code == ExitCode.USAGE_ERROR == 4
    assert words in result.output
    assert "spec.yaml:11" in result.output  # the compare_with line of the entry
    assert "debiasers.0.compare_with" in result.output or "debiasers[0].compare_with" in result.output
    if target == "leaec":
        assert "Did you mean 'leace'" in result.output


def test_validate_accepts_a_later_arm(tmp_path):
    assert cli("validate", str(spec_file(tmp_path, "leace"))).exit_code == 0


@pytest.fixture(scope="module")
def named_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("named")
    assert cli("run", str(spec_file(tmp, "leace")), "-o", str(tmp / "out"), "-q").exit_code in (0, 1)
    (run_dir,) = [p for p in (tmp / "out").glob("*/*") if p.is_dir()]
    return run_dir


def test_change_from_the_named_arm_is_the_paired_difference(named_run):
    """The change equals the difference of the two arms' metrics, and its interval is the paired
    bootstrap of the two arms' saved test scores with the audit's resamples."""
    from fairaudit.stats.bootstrap import make_rng
    from fairaudit.stats.paired import paired_changes

    result = read_result(named_run / "result.json")
    arm, ref = result.arm("projection"), result.arm("leace")
    assert arm is not None and ref is not None
    assert list(arm.versus) == ["leace"] and ref.versus == {}
    changes = {(c.metric, c.attribute): c for c in arm.versus["leace"]}
    assert set(changes) == {("roc_auc", None), ("worst_group_auc", None), ("equal_opportunity_difference", "sex")}
    for (metric, attribute), change in changes.items():
        expected = arm.metric(metric, attribute or "sex").value - ref.metric(metric, attribute or "sex").value
        assert change.value == pytest.approx(expected, abs=1e-12)
        assert change.role == "change" and change.details["reference"] == "leace"
        assert "from leace" in change.label
    # the interval: the paired bootstrap of the two arms' kept test scores, the audit's seed
    arms = named_run / "arms"
    frames = {name: pd.read_parquet(arms / f"{name}.predictions.parquet") for name in ("projection", "leace")}
    test = {name: f[f["split"] == "test"].reset_index(drop=True) for name, f in frames.items()}
    for name in test:
        assert np.allclose(test[name]["score"], np.load(next((named_run / "arms").glob(f"*.{name}.scores.npy"))))
    rows = test["leace"]
    direct = paired_changes(rows["label"].to_numpy(), {n: t["score"].to_numpy() for n, t in test.items()},
                            rows[["sex"]], ["sex"], min_group_positives=result.settings.min_group_positives,
                            reference="leace", patient_ids=rows["patient_id"].to_numpy(),
                            threshold=result.settings.threshold, n_boot=result.settings.n_boot,
                            ci_level=result.settings.ci_level, seed=make_rng(result.settings.seed, "paired_changes"))
    for c in direct["projection"]:
        mine = changes[(c.metric, c.attribute)]
        assert (mine.value, mine.ci_low, mine.ci_high) == pytest.approx((c.value, c.ci_low, c.ci_high), abs=1e-12)


def test_the_report_shows_the_named_comparison(named_run):
    html = (named_run / "report.html").read_text(encoding="utf-8")
    assert "&#39;projection&#39; against &#39;leace&#39;" in html or "'projection' against 'leace'" in html
    assert "Change from leace [paired CI]" in html
    assert "named by <code>compare_with</code> on 'projection'" in html
    assert "Against <strong>leace</strong> (compare_with)" in html
    result = read_result(named_run / "result.json")
    auc = next(c for c in result.arm("projection").versus["leace"] if c.metric == "roc_auc")
    from fairaudit.report.fmt import ci

    assert ci(auc.ci_low, auc.ci_high) in html


def test_resume_keeps_the_named_comparison(named_run):
    before = read_result(named_run / "result.json")
    (named_run / "result.json").unlink()
    next((named_run / "arms").glob("01_*.json")).unlink()  # the projection arm is recomputed
    assert cli("run", "--resume", str(named_run), "-q").exit_code in (0, 1)
    after = AuditResult.model_validate_json((named_run / "result.json").read_text())
    assert after.arm("projection").versus == before.arm("projection").versus
    assert after.arm("projection").versus["leace"]


def test_old_results_load_without_named_comparisons():
    result = AuditResult.model_validate({"name": "x", "title": "x", "created": "now",
                                         "arms": [{"name": "baseline", "kind": "baseline"}]})
    assert result.arms[0].versus == {}


REPEATED = textwrap.dedent("""\
    name: named-rep
    seed: 3
    dataset:
      name: synthetic_embeddings
      params: {n_samples: 300, dim: 16, seed: 3}
    attributes: [sex]
    model: {name: logistic, params: {C: 1.0}}
    debiasers:
      - {name: seeded_subset, label: subset, repeats: 3, compare_with: other}
      - {name: seeded_subset, label: other, repeats: 2}
    metrics: [group_metrics]
    statistics: {n_boot: 30, n_permutations: 20, min_group_size: 5}
    report: {formats: [html]}
    plugins: [repeat_plugins.py]
    """)


@pytest.mark.slow  # five trainings and two reports: ~14 s on one core
def test_named_comparison_over_seeds_pairs_seed_k_with_seed_k(tmp_path):
    """Repeat k of the arm is paired with repeat k (mod its repeats) of the named arm; the summary
    over seeds is over those per-seed changes."""
    import shutil

    shutil.copy(Path(__file__).resolve().parent / "repeat_plugins.py", tmp_path / "repeat_plugins.py")
    (tmp_path / "spec.yaml").write_text(REPEATED, encoding="utf-8")
    assert cli("run", str(tmp_path / "spec.yaml"), "-o", str(tmp_path / "out"), "-q").exit_code in (0, 1)
    (run_dir,) = [p for p in (tmp_path / "out").glob("*/*") if p.is_dir()]
    result = read_result(run_dir / "result.json")
    subset, other = result.arm("subset"), result.arm("other")
    auc = {a.name: a.metric("roc_auc").over_seeds.values for a in (subset, other)}  # type: ignore[union-attr]
    assert len(auc["subset"]) == 3 and len(auc["other"]) == 2
    change = next(c for c in subset.versus["other"] if c.derived_from == "roc_auc")  # type: ignore[union-attr]
    assert change.over_seeds is not None and change.over_seeds.n == 3
    expected = [auc["subset"][k] - auc["other"][k % 2] for k in range(3)]
    assert change.over_seeds.values == pytest.approx(expected, abs=1e-12)
    assert change.over_seeds.mean == pytest.approx(np.mean(expected))
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Over training seeds: the mean of the per-seed paired changes" in html


def test_a_generator_entry_may_not_name_its_own_evaluations():
    from fairaudit.errors import SpecError
    from fairaudit.spec.compare_with import comparison_pairs
    from fairaudit.spec.loader import load_spec_text

    text = SPEC.replace("{target}", "leace") + textwrap.dedent("""\
        generators:
          - name: some_generator
            label: gen
            evaluation: [train_on_synthetic, augment]
            compare_with: {other}
        """)
    with pytest.raises(SpecError) as caught:
        load_spec_text(text.replace("{other}", "gen (augment)"), "spec.yaml")
    (issue,) = caught.value.issues
    assert issue.loc == "generators[0].compare_with" and issue.line == 20 and "own arm 'gen (augment)'" in issue.msg
    loaded = load_spec_text(text.replace("{other}", "projection"), "spec.yaml")
    assert comparison_pairs(loaded.spec) == {"projection": "leace", "gen": "projection",
                                             "gen (augment)": "projection"}
