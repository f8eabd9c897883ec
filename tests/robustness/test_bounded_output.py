"""Unbounded output (issue 15 item 6): a sensitive column with a distinct value on almost every
row gives one aggregated warning, per-group tables of the largest groups with a note of the rest,
a small ``result.json`` and a report rendered in bounded time.  The 100,000-group figures come from
``benchmarks/bench_many_groups.py``; the default test uses 1,500 groups, the slow one 100,000."""

from __future__ import annotations

import json
import random
import textwrap
import time
from pathlib import Path

import pytest

from fairaudit.caps import MAX_GROUPS, MAX_WARNINGS, bounded_warnings, examples, largest
from fairaudit.results import ArmResult, GroupValue, MetricResult
from fairaudit.testing.runs import cli, only_run_dir

SPEC = textwrap.dedent("""\
    name: many_groups
    seed: 0
    dataset:
      name: table
      params: {path: data.csv, target: y, sensitive: [sex, site], features: [f0, f1]}
    attributes: [sex, site]
    model: logistic
    metrics: [group_metrics]
    statistics: {n_boot: 10, n_permutations: 10, min_group_size: 30}
    report: {formats: [html]}
    """)


def write_audit(folder: Path, groups: int, rows: int) -> Path:
    rng = random.Random(0)
    lines = ["f0,f1,sex,site,y"]
    for i in range(rows):
        y = int(rng.random() < 0.3)
        lines.append(f"{rng.gauss(y, 1):.3f},{rng.gauss(0, 1):.3f},{'FM'[i % 2]},site_{i % groups:06d},{y}")
    (folder / "data.csv").write_text("\n".join(lines) + "\n")
    (folder / "spec.yaml").write_text(SPEC)
    return folder / "spec.yaml"


def run_many_groups(tmp_path: Path, groups: int, rows: int) -> tuple[str, Path, float]:
    spec = write_audit(tmp_path, groups, rows)
    start = time.perf_counter()
    outcome = cli("run", spec, "-o", tmp_path / "out", "-q")
    elapsed = time.perf_counter() - start
    assert outcome.exit_code == 0, outcome.output
    return outcome.output, only_run_dir(tmp_path / "out"), elapsed


def check_bounded(output: str, run_dir: Path, groups: int) -> dict:
    result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    site_warnings = [w for w in result["warnings"] if "'site'" in w and "min_group_size" in w]
    assert len(site_warnings) == 1, result["warnings"][:5]
    assert f"of its {groups:,} groups have fewer than min_group_size=30 rows" in site_warnings[0]
    assert "row counts: 'site_0" in site_warnings[0] and f"and {groups - 5:,} more)" in site_warnings[0]
    assert output.count("min_group_size=30 rows") == 1  # printed once, even with -q
    for split in result["dataset"]["summary"].values():
        listed = split["groups"]["site"]
        assert len(listed) == MAX_GROUPS
        omitted = split["groups_omitted"]["site"]
        assert omitted["groups"] > 0
        assert sum(g["n"] for g in listed) + omitted["n"] == split["n"]  # nothing counted twice or lost
        assert len(split["groups"]["sex"]) == 2 and "sex" not in split["groups_omitted"]
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "smaller groups not listed" in html
    return result


def test_a_group_per_row_gives_one_warning_and_capped_tables(tmp_path):
    groups = 1_500
    output, run_dir, _ = run_many_groups(tmp_path, groups, rows=1_800)
    check_bounded(output, run_dir, groups)
    assert (run_dir / "result.json").stat().st_size < 250_000  # before: 560 kB (1,500 warnings, every group)
    assert (run_dir / "report.html").stat().st_size < 250_000


@pytest.mark.slow
def test_100k_groups_stay_bounded(tmp_path):
    """Before: 100,000 warnings, a 36.7 MB result.json and a 29.9 MB report.html."""
    groups = 100_000
    output, run_dir, elapsed = run_many_groups(tmp_path, groups, rows=120_000)
    check_bounded(output, run_dir, groups)
    assert (run_dir / "result.json").stat().st_size < 250_000
    assert (run_dir / "report.html").stat().st_size < 250_000
    assert elapsed < 120


def test_largest_keeps_order_and_counts_the_rest():
    rows = [{"name": f"g{i}", "n": n} for i, n in enumerate([5, 1, 9, 9, 2, 7])]
    kept, left_out = largest(rows, limit=3)
    assert [r["name"] for r in kept] == ["g2", "g3", "g5"] and left_out == 3
    assert largest(rows, limit=10) == (rows, 0)


def test_examples_and_bounded_warnings():
    assert examples(["'a'", "'b'"]) == "'a', 'b'"
    assert examples([str(i) for i in range(8)], limit=3) == "0, 1, 2 and 5 more"
    assert bounded_warnings(["x", "y", "x"]) == ["x", "y"]
    many = bounded_warnings([f"w{i}" for i in range(1_000)] * 2)
    assert len(many) == MAX_WARNINGS and many[0] == "w0"
    assert many[-1].startswith(f"{1_000 - MAX_WARNINGS + 1:,} further warning(s) not kept")


def test_a_metric_with_every_group_is_capped_in_the_result():
    from fairaudit.audit.result_builder import capped_groups

    per_group = [GroupValue(attribute="site", group=f"s{i}", n=1 + i % 97) for i in range(400)]
    per_group += [GroupValue(attribute="sex", group=g, n=200) for g in "FM"]
    arm = ArmResult(name="baseline", kind="baseline", metrics=[
        MetricResult(metric="tpr", plugin="p", per_group=per_group)])
    metric = capped_groups(arm).metrics[0]
    site = [g for g in metric.per_group if g.attribute == "site"]
    cut = sorted((1 + i % 97 for i in range(400)), reverse=True)[MAX_GROUPS - 1]
    assert len(site) == MAX_GROUPS and min(g.n for g in site) == cut == 85
    assert {g.group for g in metric.per_group if g.attribute == "sex"} == {"F", "M"}
    assert metric.notes == ["per-group values of 'site': the 50 largest of 400 groups are kept; 350 smaller "
                            "group(s) left out of result.json"]
