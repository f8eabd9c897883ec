"""Spec validation: every problem reported at once with file:line:col and the field path."""

from __future__ import annotations

import textwrap

import pytest

from fairaudit.errors import SpecError
from fairaudit.plugins import load_plugins
from fairaudit.spec.loader import load_spec, load_spec_text

GOOD = textwrap.dedent("""\
    name: demo
    dataset:
      name: synthetic_embeddings
      params: {n_samples: 200, dim: 16}
    attributes: [sex]
    model: {name: logistic, params: {C: 0.5}}
    """)


@pytest.fixture(scope="module")
def plugins():
    return load_plugins(autoload=False)


def issues_of(text: str, plugins=None) -> list:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "spec.yaml", plugins=plugins)
    return info.value.issues


def test_good_spec_loads(plugins):
    loaded = load_spec_text(GOOD, "spec.yaml", plugins=plugins)
    assert loaded.spec.model.params == {"C": 0.5}
    assert loaded.spec.metrics[0].name == "group_metrics"


def test_typo_in_field_gets_its_line_and_column():
    issues = issues_of(GOOD + "atributes: [sex]\n")
    assert len(issues) == 1
    assert (issues[0].line, issues[0].col, issues[0].loc) == (7, 1, "atributes")
    assert "unknown field" in issues[0].msg
    assert issues[0].format().startswith("spec.yaml:7:1  atributes")


def test_all_errors_reported_at_once_with_plugin_params(plugins):
    text = GOOD.replace("C: 0.5", "C: lots, penalty: l3") + "statistics: {n_boot: -1}\nseed: abc\n"
    issues = issues_of(text, plugins)
    locs = {i.loc: i for i in issues}
    assert {"statistics.n_boot", "seed", "model.params.C", "model.params.penalty"} <= set(locs)
    assert locs["seed"].line == 8
    assert locs["model.params.C"].line == 6
    assert "unknown field" in locs["model.params.penalty"].msg


def test_unknown_plugin_suggests(plugins):
    issues = issues_of(GOOD.replace("name: logistic", "name: logistc"), plugins)
    assert issues[0].loc == "model.name"
    assert "Did you mean 'logistic'" in issues[0].msg
    assert issues[0].line == 6


def test_python_tags_are_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    text = GOOD + f"title: !!python/object/apply:os.system ['touch {marker}']\n"
    issues = issues_of(text)
    assert "constructor" in issues[0].msg
    assert not marker.exists()


def test_malformed_yaml_points_at_the_problem():
    issues = issues_of("name: demo\ndataset: [unclosed\nattributes: [sex]\n")
    assert issues[0].line is not None and "invalid YAML" in issues[0].msg


def test_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    with pytest.raises(SpecError, match="spec file is empty"):
        load_spec(path)


def test_not_yaml_binary_file(tmp_path):
    path = tmp_path / "image.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(path)


def test_top_level_must_be_a_mapping():
    issues = issues_of("- just\n- a list\n")
    assert "mapping" in issues[0].msg


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.yaml")


def test_duplicate_arm_names_and_bad_intersections():
    text = GOOD + "debiasers: [advvae, advvae]\nintersections: [[sex, race]]\n"
    issues = issues_of(text)
    joined = " | ".join(i.msg for i in issues)
    assert "not listed in 'attributes'" in joined or "repeated" in joined


def test_threshold_needs_a_bound():
    issues = issues_of(GOOD + "thresholds:\n  equal_opportunity_difference: {}\n")
    assert issues[0].loc == "thresholds.equal_opportunity_difference"
    assert issues[0].line == 8
