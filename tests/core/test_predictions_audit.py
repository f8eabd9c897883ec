"""Auditing scores a model already gave (dataset ``predictions``): from YAML and from the notebook API.

One 5,000-row table (two attributes, two rows per patient, a TPR gap injected for ``sex = F``)
is audited by ``fairaudit run`` and by ``fairaudit.audit_predictions`` with the default 1000
bootstrap resamples: the results agree, every group metric equals fairlearn's ``MetricFrame`` on
the same table, no model is created or trained, and the run folder's predictions file recomputes
the figures.  Spec and data errors of this dataset are cases of ``tests/bad_inputs``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, average_precision_score, brier_score_loss, precision_score, roc_auc_score

import fairaudit
from fairaudit.audit import state as run_state
from fairaudit.builtin.datasets.predictions import logistic
from fairaudit.results import AuditResult
from fairaudit.testing.runs import cli, load_result, only_run_dir

N = 5000
ATTRIBUTES = ["sex", "race"]


def make_table(n: int = N, seed: int = 0) -> pd.DataFrame:
    """Labels, a model's logits (and their probabilities) with a lower TPR for women, a second
    model (``score_b``) that closes most of the gap, two attributes and two rows per patient."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    race = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    y = (rng.random(n) < 0.3).astype(int)
    women = (sex == "F") & (y == 1)
    logit = np.where(y == 1, 1.3, -1.3) - 1.0 * women + rng.normal(0, 1.0, n)
    logit_b = logit + 0.8 * women + rng.normal(0, 0.3, n)
    return pd.DataFrame({"pid": [f"P{i // 2:05d}" for i in range(n)], "sex": sex, "race": race, "y": y,
                         "score": logistic(logit), "logit": logit, "score_b": logistic(logit_b)})


SPEC = textwrap.dedent("""\
    name: preds
    dataset:
      name: predictions
      params:
        path: {path}
        target: y
        score: {score}
        sensitive: [sex, race]
        patient_id: pid{extra_params}
    attributes: [sex, race]
    statistics: {statistics}
    report: {{formats: [html]}}
    """)


def spec_text(path: Path, score: str = "score", extra_params: str = "", statistics: str = "{}") -> str:
    """The spec of an audit of ``path``'s ``score`` (``extra_params``: further lines of params)."""
    return SPEC.format(path=path, score=score, extra_params=extra_params, statistics=statistics)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    frame = make_table()
    path = tmp_path_factory.mktemp("table") / "preds.csv"
    frame.to_csv(path, index=False)  # full precision: read back exactly
    return path, frame


class Watch:
    """Every plugin the runner creates, by family, and every model fit."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.fits = 0


@pytest.fixture(scope="module")
def audited(table: tuple[Path, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The table audited by ``fairaudit run`` (timed) and by ``audit_predictions``, with the
    default statistics (1000 bootstrap resamples, 1000 permutations), under watch."""
    path, frame = table
    tmp = tmp_path_factory.mktemp("audited")
    spec = tmp / "preds.yaml"
    spec.write_text(spec_text(path))
    watch = Watch()
    original_create = run_state.create

    def create(plugins: Any, context: Any, family: str, comp: Any) -> Any:
        watch.created.append(family)
        return original_create(plugins, context, family, comp)

    def fit_predict(*args: Any, **kw: Any) -> Any:
        watch.fits += 1
        raise AssertionError("a model was trained")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_state, "create", create)
        mp.setattr(run_state.RunState, "fit_predict", fit_predict)
        started = time.perf_counter()
        outcome = cli("run", spec, "-o", tmp / "cli", "-q")
        seconds = time.perf_counter() - started
        api = fairaudit.audit_predictions(frame, target="y", score="score", sensitive=ATTRIBUTES, patient_id="pid",
                                          output=tmp / "api", name="preds", formats=("html",))
    print(f"\nfairaudit run on {N:,} rows, 2 attributes, 1000 resamples: {seconds:.1f} s (in-process)")
    assert outcome.exit_code == 0, outcome.output
    run_dir = only_run_dir(tmp / "cli")
    return {"cli": load_result(run_dir), "run_dir": run_dir, "api": api, "watch": watch, "frame": frame}


def _numbers(result: AuditResult) -> list[dict[str, Any]]:
    """Every arm's metrics and paired changes (timings aside)."""
    return [{"name": a.name, "kind": a.kind, "metrics": [m.model_dump() for m in a.metrics],
             "versus_baseline": [m.model_dump() for m in a.versus_baseline]} for a in result.arms]


def test_cli_and_notebook_api_give_the_same_result(audited: dict[str, Any]) -> None:
    cli_result, api = audited["cli"], audited["api"]
    assert api.run_dir is not None and (api.run_dir / "result.json").is_file()
    assert load_result(api.run_dir).model_dump() == api.model_dump()  # what it returns is what it wrote
    assert _numbers(api) == _numbers(cli_result)
    assert api.settings == cli_result.settings
    assert api.dataset.summary == cli_result.dataset.summary and api.dataset.hash == cli_result.dataset.hash
    assert api.warnings == cli_result.warnings
    assert cli_result.settings.n_boot == 1000


def test_no_model_is_created_or_trained(audited: dict[str, Any]) -> None:
    watch, result = audited["watch"], audited["cli"]
    assert watch.created == ["datasets", "metrics"] * 2 and watch.fits == 0  # the CLI's run, then the API's
    assert [(a.name, a.kind, a.status) for a in result.arms] == [("score", "predictions", "ok")]
    assert result.settings.model is None and result.settings.split["given"] is True
    assert result.settings.reference_arm == "score"
    assert result.dataset.summary["test"].n == N and set(result.dataset.summary) == {"test"}


#: group_metrics' per-group rates and the fairlearn / sklearn function computing the same thing.
RATES = {
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "selection_rate": selection_rate,
    "positive_predictive_value": lambda y, p: precision_score(y, p, zero_division=0.0),
    "negative_predictive_value": lambda y, p: ((y == 0) & (p == 0)).sum() / (p == 0).sum(),
    "accuracy": accuracy_score,
}
WORST = {"true_positive_rate": "group_min", "false_positive_rate": "group_max", "selection_rate": None,
         "positive_predictive_value": "group_min", "negative_predictive_value": "group_min",
         "accuracy": "group_min"}
#: The gaps of a rate are named after the rate, except these (fairlearn's names).
GAPS = {"true_positive_rate": "equal_opportunity", "selection_rate": "demographic_parity"}
SCORES = {"roc_auc": roc_auc_score, "average_precision": average_precision_score, "brier_score": brier_score_loss}


def _by_group(frame: MetricFrame) -> dict[str, float]:
    return {str(k): float(v) for k, v in frame.by_group.items()}


@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_every_group_metric_equals_fairlearn_metricframe(audited: dict[str, Any], attribute: str) -> None:
    frame, arm = audited["frame"], audited["cli"].arms[0]
    y, score, groups = frame["y"].to_numpy(), frame["score"].to_numpy(), frame[attribute].to_numpy()
    pred = (score >= 0.5).astype(int)
    got = {m.metric: m for m in arm.metrics if m.attribute == attribute}
    for name, fn in RATES.items():
        mf = MetricFrame(metrics=fn, y_true=y, y_pred=pred, sensitive_features=groups)
        m = got[name]
        assert {g.group: g.value for g in m.per_group} == _by_group(mf), name  # exact
        assert m.value == mf.overall, name
        gap = GAPS.get(name, name)
        assert got[f"{gap}_difference"].value == mf.difference(), name
        assert got[f"{gap}_difference_to_overall"].value == mf.difference(method="to_overall"), name
        assert got[f"{gap}_ratio"].value == mf.ratio(), name
        assert got[f"{gap}_ratio_to_overall"].value == mf.ratio(method="to_overall"), name
        if WORST[name]:
            assert got[f"worst_group_{name}"].value == getattr(mf, WORST[name])(), name
    kw = {"sensitive_features": groups}
    assert got["equal_opportunity_difference"].value == equal_opportunity_difference(y, pred, **kw)
    assert got["equalized_odds_difference"].value == equalized_odds_difference(y, pred, **kw)
    assert got["demographic_parity_difference"].value == demographic_parity_difference(y, pred, **kw)
    for name, fn in SCORES.items():  # score metrics: to the last bits, as in test_reference_equality
        mf = MetricFrame(metrics=fn, y_true=y, y_pred=score, sensitive_features=groups)
        assert {g.group: g.value for g in got[name].per_group} == pytest.approx(_by_group(mf), abs=1e-12), name
        assert got[name].value == pytest.approx(mf.overall, abs=1e-12), name
    assert got["auc_difference"].value == pytest.approx(
        MetricFrame(metrics=roc_auc_score, y_true=y, y_pred=score, sensitive_features=groups).difference(), abs=1e-12)
    if attribute == "sex":  # the injected gap: women's TPR is lower, and the interval says so
        eod = got["equal_opportunity_difference"]
        assert eod.value > 0.15 and eod.ci_low > 0.1


def test_predictions_file_recomputes_the_figures(audited: dict[str, Any]) -> None:
    frame, run_dir, arm = audited["frame"], audited["run_dir"], audited["cli"].arms[0]
    saved = pd.read_parquet(run_dir / "arms" / "score.predictions.parquet")
    assert list(saved.columns) == ["row", "patient_id", "split", "label", "score", "decision", "sex", "race"]
    np.testing.assert_array_equal(saved["row"], np.arange(N))
    assert (saved["split"] == "test").all()
    np.testing.assert_array_equal(saved["score"], frame["score"])
    np.testing.assert_array_equal(saved["label"], frame["y"])
    np.testing.assert_array_equal(saved["decision"], (frame["score"] >= 0.5).astype(int))
    assert (saved["patient_id"] == frame["pid"]).all() and (saved["race"] == frame["race"]).all()
    mf = MetricFrame(metrics=true_positive_rate, y_true=saved["label"], y_pred=saved["decision"],
                     sensitive_features=saved["sex"])
    tpr = next(m for m in arm.metrics if m.metric == "true_positive_rate" and m.attribute == "sex")
    assert {g.group: g.value for g in tpr.per_group} == _by_group(mf)


def test_to_frame_has_every_value_with_its_interval(audited: dict[str, Any]) -> None:
    result = audited["api"]
    table = result.to_frame()
    assert list(table.columns) == ["arm", "metric", "attribute", "group", "value", "ci_low", "ci_high", "n", "role"]
    arm = result.arms[0]
    listed = [m for m in arm.metrics if m.role != "curve"]
    assert len(table) == len(listed) + sum(len(m.per_group) for m in listed)
    assert not table.duplicated(["arm", "metric", "attribute", "group"]).any()
    tpr = next(m for m in arm.metrics if m.metric == "true_positive_rate" and m.attribute == "sex")
    women = table[(table.metric == "true_positive_rate") & (table.attribute == "sex") & (table.group == "F")].iloc[0]
    group = next(g for g in tpr.per_group if g.group == "F")
    assert (women.value, women.ci_low, women.ci_high, women.n, women.role) == (
        group.value, group.ci_low, group.ci_high, group.n, "value")
    overall = table[(table.metric == "equal_opportunity_difference") & (table.attribute == "sex")].iloc[0]
    assert overall.group == "(all)" and overall.role == "gap" and pd.isna(overall.n)


def test_two_score_columns_are_two_arms_paired_with_the_first(table: tuple[Path, pd.DataFrame],
                                                              tmp_path: Path) -> None:
    path, _ = table
    spec = tmp_path / "two.yaml"
    spec.write_text(spec_text(path, score="{old: score, new: score_b}",
                              statistics="{n_boot: 300, n_permutations: 0}"))
    outcome = cli("run", spec, "-o", tmp_path / "out", "-q")
    assert outcome.exit_code == 0, outcome.output
    run_dir = only_run_dir(tmp_path / "out")
    result = load_result(run_dir)
    assert [a.name for a in result.arms] == ["old", "new"] and result.settings.reference_arm == "old"
    old, new = result.arms
    assert old.versus_baseline == []
    eod = next(m for m in new.versus_baseline if m.derived_from == "equal_opportunity_difference"
               and m.attribute == "sex")
    assert eod.role == "change" and eod.details["reference"] == "old"
    assert eod.ci_high < 0  # the second model closes the injected gap, beyond noise
    assert {p.name for p in (run_dir / "arms").glob("*.predictions.parquet")} == {
        "old.predictions.parquet", "new.predictions.parquet"}
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Model comparison" in html and "Changes in brackets are against old" in html
    assert "How each model differs from old" in html and "paired CI" in html


def test_logits_give_the_probabilities_results(table: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    """``score_kind: logit`` converts with the logistic function: the same numbers as the
    probabilities it was made from."""
    path, _ = table
    results = {}
    for column, kind in (("score", ""), ("logit", "\n    score_kind: logit")):
        spec = tmp_path / f"{column}.yaml"
        spec.write_text(spec_text(path, score=f"{{model: {column}}}", extra_params=kind,
                                  statistics="{n_boot: 50, n_permutations: 50}"))
        outcome = cli("run", spec, "-o", tmp_path / column, "-q")
        assert outcome.exit_code == 0, outcome.output
        results[column] = load_result(only_run_dir(tmp_path / column))
    assert _numbers(results["logit"]) == _numbers(results["score"])
    assert results["logit"].arms[0].params == {"score": "logit", "score_kind": "logit"}


def test_report_renders_from_the_run_folder_alone(tmp_path: Path) -> None:
    data = tmp_path / "data" / "small.csv"
    data.parent.mkdir()
    make_table(400, seed=1).to_csv(data, index=False)
    spec = tmp_path / "small.yaml"
    spec.write_text(spec_text(data, statistics="{n_boot: 20, n_permutations: 0, min_group_size: 10}"))
    assert cli("run", spec, "-o", tmp_path / "out", "-q").exit_code == 0
    shutil.rmtree(data.parent)
    moved = tmp_path / "elsewhere"
    shutil.copytree(only_run_dir(tmp_path / "out"), moved)
    (moved / "report.html").unlink()
    outcome = cli("report", moved, "--format", "html")
    assert outcome.exit_code == 0, outcome.output
    assert "the given scores of" in (moved / "report.html").read_text(encoding="utf-8")


def test_run_takes_a_spec_dict_with_paths_from_the_current_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_table(300, seed=2).to_csv("scores.csv", index=False)
    spec = {"name": "from-dict", "dataset": {"name": "predictions", "params": {
        "path": "scores.csv", "target": "y", "score": "score", "sensitive": ["sex"]}},
        "attributes": ["sex"], "statistics": {"n_boot": 20, "n_permutations": 0, "min_group_size": 10},
        "report": {"formats": []}}
    result = fairaudit.run(spec, output="out")
    assert result.arms[0].status == "ok" and result.run_dir is not None
    assert result.run_dir.parent == tmp_path / "out" / "from-dict"
    assert (tmp_path / "out" / "from-dict-input" / "spec.yaml").is_file()
    written = result.write_report(tmp_path / "report", formats=("html",))
    assert written["html"].is_file()


def test_notebook_api_imports_no_torch(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""\
        import sys
        import numpy as np, pandas as pd
        import fairaudit
        rng = np.random.default_rng(0)
        n = 300
        df = pd.DataFrame({{"y": rng.integers(0, 2, n), "s": rng.random(n), "g": rng.choice(["a", "b"], n)}})
        result = fairaudit.audit_predictions(df, target="y", score="s", sensitive=["g"], output={str(tmp_path)!r},
                                             metrics=["group_metrics"], formats=["html"],
                                             statistics={{"n_boot": 20, "n_permutations": 20, "min_group_size": 10}})
        assert result.arms[0].status == "ok", result.arms[0].error
        assert len(result.to_frame()) > 10
        print("torch imported:", "torch" in sys.modules)
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "torch imported: False" in proc.stdout, proc.stdout + proc.stderr


def test_fields_that_train_are_refused_with_other_problems_at_once(tmp_path: Path) -> None:
    spec = tmp_path / "both.yaml"
    spec.write_text(textwrap.dedent("""\
        name: both
        seed: forty
        dataset:
          name: predictions
          params: {path: preds.csv, target: y, score: score, sensitive: [sex]}
        attributes: [sex]
        model: logistic
        generators: [cafgan]
        """))
    outcome = cli("validate", spec)
    assert outcome.exit_code == 4
    lines = [" ".join(line.split()) for line in outcome.output.splitlines()]
    assert any("both.yaml:2:1 seed Input should be a valid integer" in line for line in lines), outcome.output
    assert any("both.yaml:7:1 model dataset 'predictions' gives a model's scores" in line for line in lines)
    assert any("both.yaml:8:1 generators dataset 'predictions' gives a model's scores" in line for line in lines)
