"""Resume integrity (issue 15 item 1, 7, 8): every arm file carries a fingerprint; ``--resume``
keeps an arm only when its file is readable and its fingerprint matches, recomputes it with a
warning otherwise, and refuses (exit 4) changed data, truncated run-folder files and links.

Each resumed result is compared field by field with the result of an uninterrupted run of the
same spec.  The corpus README (``README.md`` here) lists every case with its exit code and message.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit.errors import ExitCode
from fairaudit.testing.runs import cli

PLUGINS = "local_plugins.py"  # copied beside each spec (conftest.py)
USAGE = int(ExitCode.USAGE_ERROR)

SPEC = textwrap.dedent(f"""\
    name: resume
    seed: 3
    dataset:
      name: synthetic_embeddings
      params: {{n_samples: 300, dim: 16, seed: 3}}
    attributes: [sex]
    model: {{name: logistic, params: {{C: 1.0}}}}
    debiasers:
      - {{name: slow_projection, label: projection}}
    metrics: [group_metrics]
    statistics: {{n_boot: 20, n_permutations: 20, min_group_size: 5}}
    report: {{formats: [html]}}
    plugins: ["{PLUGINS}"]
    """)


def first_run(tmp_path: Path, text: str = SPEC, out: str = "out") -> Path:
    spec = tmp_path / f"{out}.yaml"
    spec.write_text(text)
    result = cli("run", str(spec), "-o", str(tmp_path / out), "-q")
    assert result.exit_code == 0, result.output
    [run_dir] = [p for p in (tmp_path / out).glob("*/*") if p.is_dir()]
    return run_dir


def result_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def arm_file(run_dir: Path, index: int) -> Path:
    [path] = (run_dir / "arms").glob(f"{index:02d}_*.json")
    return path


def same(a: object, b: object, path: str = "") -> list[str]:
    """Where two JSON values differ (numbers within 1e-9); timings are ignored."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a if k != "timings" for d in same(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in same(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (a != a and b != b) else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def assert_same_audit(resumed: dict, straight: dict) -> None:
    for key in ("arms", "verdicts", "dataset"):
        assert same(resumed[key], straight[key], key) == []


def test_edited_debiaser_param_recomputes_that_arm_only_with_a_warning(tmp_path):
    run_dir = first_run(tmp_path)
    marker = tmp_path / "fit-ran"
    spec_copy = run_dir / "spec.yaml"
    edited = SPEC.replace("label: projection}", f'label: projection, params: {{marker: "{marker}"}}}}')
    spec_copy.write_text(edited)
    baseline_file = arm_file(run_dir, 0).read_bytes()

    result = cli("run", "--resume", str(run_dir))  # not quiet: the console says what happens to each arm
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "arm 1/2 'baseline': already done, kept from the earlier run" in out
    assert "arm 2/2 'projection': recomputing: arms/01_projection.json was computed with other settings " \
           "(arm.component.params.marker: '(absent)' -> '/" in out
    assert "arm 2/2 'projection': metric group_metrics" in out
    assert marker.is_file()  # the projection really was fitted again
    assert arm_file(run_dir, 0).read_bytes() == baseline_file  # the baseline was kept, not rewritten
    resumed = result_of(run_dir)
    assert any(w.startswith("arm 'projection' was recomputed on resume: arms/01_projection.json was computed "
                            "with other settings") for w in resumed["warnings"])
    straight = result_of(first_run(tmp_path, edited, "straight"))
    assert_same_audit(resumed, straight)
    # the Timings table of the resumed run covers the kept baseline too, metric by metric
    timings = json.loads((run_dir / "manifest.json").read_text())["timings"]
    assert {"baseline", "baseline.metrics", "baseline.metrics.group_metrics", "projection.fit",
            "projection.metrics.group_metrics"} <= set(timings)

    # the downstream model is part of every arm's fingerprint: both arms are recomputed
    spec_copy.write_text(edited.replace("C: 1.0", "C: 0.2"))
    result = cli("run", "--resume", str(run_dir), "-q")
    assert result.exit_code == 0, result.output
    warnings = result_of(run_dir)["warnings"]
    for name in ("baseline", "projection"):
        assert any(w.startswith(f"arm {name!r} was recomputed on resume") and "model.params.C: 1.0 -> 0.2" in w
                   for w in warnings), warnings


def _table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(4)})
    frame["label"] = (frame["f0"] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    frame["sex"] = rng.choice(["F", "M"], size=n)
    frame["patient"] = np.arange(n)
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


def test_changed_data_file_is_refused_with_exit_4_and_nothing_is_lost(tmp_path):
    csv = _table(tmp_path)
    text = SPEC.replace("name: synthetic_embeddings\n  params: {n_samples: 300, dim: 16, seed: 3}",
                        "name: table\n  params: {path: table.csv, target: label, sensitive: [sex], "
                        "features: [f0, f1, f2, f3], patient_id: patient}")
    assert "table.csv" in text
    run_dir = first_run(tmp_path, text)
    before = {p.name: p.read_bytes() for p in (run_dir / "arms").iterdir()}
    original = csv.read_text()
    frame = pd.read_csv(csv)
    frame.loc[5, "label"] = 1 - frame.loc[5, "label"]  # one label flipped
    changed = frame.to_csv(index=False)
    assert changed != original
    csv.write_text(changed)

    result = cli("run", "--resume", str(run_dir), "-q", catch_exceptions=True)
    assert result.exit_code == USAGE, result.output
    assert "the data changed since this run" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in (run_dir / "arms").iterdir()} == before  # nothing overwritten
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "the data changed" in manifest["error"]

    csv.write_text(original)  # the data the run was computed on: resume works again
    result = cli("run", "--resume", str(run_dir), "-q")
    assert result.exit_code == 0, result.output
    assert not any("recomputed" in w for w in result_of(run_dir)["warnings"])


def test_truncated_arm_file_is_recomputed(tmp_path):
    run_dir = first_run(tmp_path)
    straight = result_of(run_dir)
    path = arm_file(run_dir, 1)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = cli("run", "--resume", str(run_dir), "-q")
    assert result.exit_code == 0, result.output
    resumed = result_of(run_dir)
    assert any(w.startswith("arm 'projection' was recomputed on resume: arms/01_projection.json is unreadable "
                            "(truncated?)") for w in resumed["warnings"])
    assert_same_audit(resumed, straight)
    json.loads(path.read_text())  # written again, whole


def test_arm_file_copied_from_another_run_is_recomputed(tmp_path):
    run_dir = first_run(tmp_path)
    straight = result_of(run_dir)
    other = first_run(tmp_path, SPEC.replace("seed: 3\ndataset", "seed: 11\ndataset"), "other")
    for src in (other / "arms").glob("01_*"):  # the arm file and its scores
        (run_dir / "arms" / src.name).write_bytes(src.read_bytes())
    result = cli("run", "--resume", str(run_dir), "-q")
    assert result.exit_code == 0, result.output
    resumed = result_of(run_dir)
    [warning] = [w for w in resumed["warnings"] if "recomputed" in w]
    assert warning.startswith("arm 'projection' was recomputed on resume: arms/01_projection.json was computed "
                              "with other settings") and "seed: 11 -> 3" in warning
    assert_same_audit(resumed, straight)


def test_truncated_manifest_or_result_is_a_clear_error(tmp_path):
    run_dir = first_run(tmp_path)
    result_json = run_dir / "result.json"
    whole = result_json.read_bytes()
    result_json.write_bytes(whole[:200])
    for command in (["run", "--resume", str(run_dir)], ["report", str(run_dir), "--format", "html"]):
        result = cli(*command, catch_exceptions=True)
        assert result.exit_code == USAGE, result.output
        assert "result.json is truncated or incomplete" in " ".join(result.output.split())
        assert "Traceback" not in result.output
    result_json.write_bytes(whole)

    manifest = run_dir / "manifest.json"
    manifest.write_text(manifest.read_text()[:50])
    result = cli("run", "--resume", str(run_dir), catch_exceptions=True)
    assert result.exit_code == USAGE, result.output
    assert "manifest.json is truncated or not JSON" in " ".join(result.output.split())
    manifest.write_text(json.dumps({"spec_name": "resume"}))  # valid JSON, but not a whole manifest
    result = cli("run", "--resume", str(run_dir), catch_exceptions=True)
    assert result.exit_code == USAGE and "manifest.json is incomplete (no spec_dir, status)" in \
        " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_symbolic_link_inside_a_run_folder_is_refused(tmp_path):
    run_dir = first_run(tmp_path)
    secret = tmp_path / "elsewhere.json"
    secret.write_text("{}")
    os.symlink(secret, run_dir / "arms" / "02_injected.json")
    before = secret.read_text()
    result = cli("run", "--resume", str(run_dir), catch_exceptions=True)
    assert result.exit_code == USAGE, result.output
    assert "it contains symbolic links (arms/02_injected.json)" in " ".join(result.output.split())
    assert secret.read_text() == before


def test_a_300_character_label_gets_a_bounded_file_name_and_its_arm_is_kept(tmp_path):
    label = "très long label [/bold] " * 13  # 312 characters, rich markup and non-ASCII included
    text = SPEC.replace("label: projection}", f"label: {json.dumps(label)}}}")
    run_dir = first_run(tmp_path, text)
    names = [p.name for p in (run_dir / "arms").iterdir()]
    assert len(names) == 6 and max(len(n) for n in names) <= 140, names  # 2 arm files, 2 scores, 2 predictions
    [arm] = [a for a in result_of(run_dir)["arms"] if a["name"] == label]
    assert arm["status"] == "ok"
    result = cli("run", "--resume", str(run_dir))
    assert result.exit_code == 0, result.output
    assert "arm 2/2 " in result.output and "already done, kept from the earlier run" in result.output
    assert result.output.count("already done") == 2
    assert not any("recomputed" in w for w in result_of(run_dir)["warnings"])
