"""The given-scores examples: the committed table is what its script writes, the spec finds the
injected gap, and the notebook script runs (``test_examples.py`` validates the spec too)."""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path

import pytest

from fairaudit.testing.runs import cli, load_result, only_run_dir

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_committed_table_is_what_the_script_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_predictions", EXAMPLES / "data" / "make_predictions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    frame = module.make()
    assert len(frame) <= 2000
    assert frame.to_csv(index=False, lineterminator="\n") == (EXAMPLES / "data" / "predictions.csv").read_text()


def test_spec_finds_the_injected_sensitivity_gap(tmp_path: Path) -> None:
    text = (EXAMPLES / "predictions.yaml").read_text(encoding="utf-8")
    text = text.replace("path: data/predictions.csv", f"path: {EXAMPLES / 'data' / 'predictions.csv'}")
    text = text.replace("n_boot: 1000", "n_boot: 100")  # permutations stay 1000: a FAIL needs the test
    text = text.replace("formats: [html, pdf]", "formats: [html]")
    spec = tmp_path / "predictions.yaml"
    spec.write_text(text, encoding="utf-8")
    outcome = cli("run", spec, "-o", tmp_path / "out", "-q")
    assert outcome.exit_code == 1, outcome.output  # model_v1 fails the declared EOD bound
    result = load_result(only_run_dir(tmp_path / "out"))
    assert {(v.arm, v.outcome) for v in result.verdicts} == {("model_v1", "fail"), ("model_v2", "pass")}
    assert result.dataset.summary["val"].n == 330 and result.dataset.summary["test"].n == 1270
    sens = result.arms[0].metric("sensitivity_at_specificity", "sex")
    assert sens is not None and sens.status == "ok"  # the operating point came from the validation rows
    assert {g.group for g in result.dataset.summary["test"].groups["age"]} == {"<50", "50-64", "65+"}


def test_notebook_script_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["audit_predictions.py", str(tmp_path), "50"])
    runpy.run_path(str(EXAMPLES / "audit_predictions.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "model_v1  equal_opportunity_difference (sex)" in out and "-> fail" in out
    assert (tmp_path / "board-report" / "report.html").is_file()
    assert (tmp_path / "predictions-notebook-input" / "predictions.parquet").is_file()
