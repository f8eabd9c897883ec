"""The YAML examples validate, and run end to end through the audit runner (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fairaudit.plugins import load_plugins
from fairaudit.spec.loader import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPECS = sorted(EXAMPLES.glob("*.yaml"))


def test_examples_exist() -> None:
    names = {p.name for p in SPECS}
    assert names >= {"alphashift_embeddings.yaml", "alphashift_synthetic_cxr.yaml"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_example_validates_with_plugin_parameters(spec: Path) -> None:
    loaded = load_spec(spec, plugins=load_plugins())
    arms = [c for c in loaded.spec.debiasers if c.name == "alphashift"]
    assert arms and all("bias_attributes" in c.params for c in arms)


def _shrunk(spec: Path, tmp_path: Path, dataset: dict, debiaser: dict) -> Path:
    """A copy of ``spec`` with smaller data and training (same structure)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    doc = yaml.load(spec.read_text())
    doc["dataset"]["params"].update(dataset)
    for comp in doc["debiasers"]:
        comp["params"].update(debiaser)
    doc["statistics"] = {"n_boot": 50, "n_permutations": 50}
    out = tmp_path / spec.name
    with out.open("w") as fh:
        yaml.dump(doc, fh)
    return out


def _run(spec: Path, tmp_path: Path) -> dict:
    from fairaudit.audit.runner import run_audit

    outcome = run_audit(spec, output_dir=tmp_path / "reports", formats=["html"])
    result = json.loads((outcome.run_dir / "result.json").read_text())
    failed = {a["name"]: a["error"] for a in result["arms"] if a["status"] != "ok"}
    assert not failed, failed
    assert (outcome.run_dir / "report.html").is_file()
    return {"run_dir": outcome.run_dir, "result": result}


@pytest.mark.slow
def test_embeddings_example_runs(tmp_path: Path) -> None:
    spec = _shrunk(EXAMPLES / "alphashift_embeddings.yaml", tmp_path, {"n_samples": 800}, {})
    out = _run(spec, tmp_path)
    arm = next(a for a in out["result"]["arms"] if a["name"] == "alphashift")
    assert any(s["kind"] == "table" for s in arm["blocks"])


@pytest.mark.slow
def test_synthetic_cxr_example_runs(tmp_path: Path) -> None:
    spec = _shrunk(EXAMPLES / "alphashift_synthetic_cxr.yaml", tmp_path,
                   {"n_samples": 300, "image_size": 32},
                   {"image_size": 32, "max_epochs": 3, "width": 0.25, "depth": 0.0})
    out = _run(spec, tmp_path)
    arm = next(a for a in out["result"]["arms"] if a["name"] == "alphashift")
    grids = [s for s in arm["blocks"] if s["kind"] == "image_grid"]
    assert any("device" in s["title"] for s in grids)
    for s in grids:
        assert (out["run_dir"] / s["path"]).is_file()
    assert any(m["metric"].startswith("scls") for m in arm["metrics"])
    html = (out["run_dir"] / "report.html").read_text()
    assert "alpha sweep along" in html
