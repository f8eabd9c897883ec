"""Paired changes between arms are a capability any metric may offer: an audit whose only metric
is a third-party replacement for ``group_metrics`` still gets each arm's change from the baseline,
and the report dispatches on the declared roles, not on names."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairaudit.cli.app import app
from fairaudit.results import read_result

REPLACEMENT = textwrap.dedent('''\
    """A replacement for group_metrics: TPR gap per attribute, and its paired changes, written
    with the public API only (fairaudit, fairaudit.stats)."""
    import numpy as np
    from fairaudit import BaseMetric, MetricOutput, MetricResult, hookimpl
    from fairaudit.stats import difference, encode_groups, paired_bootstrap, rate


    def tpr_gap(y, pred, groups, w):
        """max - min TPR over groups under row weights ``w`` (b, n)."""
        onehot = np.zeros((len(y), 4 * groups.n_groups))
        onehot[np.arange(len(y)), 4 * groups.codes + 2 * y + pred] = 1.0  # cells tn, fp, fn, tp
        counts = (w @ onehot).reshape(len(w), groups.n_groups, 4)
        return difference(rate(counts, "true_positive_rate"))


    class WardGap(BaseMetric):
        name = "ward_gap"

        def outputs(self):
            return [MetricOutput("ward_tpr_gap", "gap", headline=True, derived_from="true_positive_rate")]

        def compute(self, ctx):
            pred = (ctx.y_score >= ctx.threshold).astype(int)
            ones = np.ones((1, len(pred)))
            return [MetricResult(metric="ward_tpr_gap", plugin=self.name, attribute=a, role="gap", headline=True,
                                 derived_from="true_positive_rate", higher_is_better=False,
                                 value=float(tpr_gap(ctx.y_true, pred, encode_groups(ctx.sensitive, [a]), ones)[0]))
                    for a in ctx.attributes]

        def paired_changes(self, ctx):
            groups = {a: encode_groups(ctx.sensitive, [a]) for a in ctx.attributes}

            def statistics(scores):
                pred = (scores >= ctx.threshold).astype(int)
                return lambda w: {a: tpr_gap(ctx.y_true, pred, g, w) for a, g in groups.items()}

            changes = paired_bootstrap({arm: statistics(s) for arm, s in ctx.scores.items()},
                                       reference=ctx.reference, n_rows=len(ctx.y_true), patient_ids=ctx.patient_ids,
                                       n_boot=ctx.stats.n_boot, ci_level=ctx.stats.ci_level, seed=ctx.stats.seed)
            return {arm: [MetricResult(metric="ward_tpr_gap", plugin=self.name, attribute=a, role="change",
                                       derived_from="ward_tpr_gap", value=v, ci_low=lo, ci_high=hi,
                                       details={"excludes_zero": bool(lo > 0 or hi < 0)})
                          for a, (v, lo, hi) in found.items()]
                    for arm, found in changes.items()}


    @hookimpl
    def fairaudit_register_metrics(registry):
        registry.add(WardGap)
    ''')

SPEC = textwrap.dedent("""\
    name: replacement
    seed: 2
    plugins: [ward_gap.py, local_plugins.py]
    dataset:
      name: synthetic_embeddings
      params: {n_samples: 800, dim: 24, seed: 2}
    attributes: [sex]
    model: {name: logistic}
    debiasers: [{name: slow_projection, label: projection}]
    metrics: [ward_gap]
    statistics: {n_boot: 200, n_permutations: 0, min_group_size: 10}
    report: {formats: [html]}
    """)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("replacement")
    (tmp / "ward_gap.py").write_text(REPLACEMENT)
    (tmp / "local_plugins.py").write_text((Path(__file__).parents[1] / "local_plugins.py").read_text())
    (tmp / "spec.yaml").write_text(SPEC)
    outcome = CliRunner().invoke(app, ["run", str(tmp / "spec.yaml"), "-o", str(tmp / "out"), "-q"])
    assert outcome.exit_code == 0, outcome.output
    return next((tmp / "out").rglob("result.json")).parent


def test_a_replacement_metric_keeps_paired_changes(run_dir: Path) -> None:
    result = read_result(run_dir / "result.json")
    base, arm = result.arm("baseline"), result.arm("projection")
    assert base is not None and arm is not None and arm.status == "ok", arm and arm.error
    assert not any(m.plugin == "group_metrics" for a in result.arms for m in a.metrics)
    (change,) = arm.versus_baseline
    assert change.plugin == "ward_gap" and change.role == "change" and change.attribute == "sex"
    expected = arm.metric("ward_tpr_gap", "sex").value - base.metric("ward_tpr_gap", "sex").value  # type: ignore[union-attr,operator]
    assert change.value == pytest.approx(expected, abs=1e-12)
    assert change.ci_low is not None and change.ci_low <= change.value <= change.ci_high  # type: ignore[operator]
    assert change.details["excludes_zero"] == (change.ci_low > 0 or change.ci_high < 0)  # type: ignore[operator]


def test_the_report_compares_arms_on_the_replacement_s_headline(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    section = html[html.index("Mitigation comparison"): html.index("Changes in brackets")]
    assert "Ward TPR gap (sex)" in section
    assert "[" in section.split("Ward TPR gap (sex)")[1]  # the paired interval beside the change
