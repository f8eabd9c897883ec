"""Local plugin files (a spec's ``plugins:``) are code (issue 15, item 3): ``validate`` reads them
without importing them; ``run`` and ``--resume`` load them only from inside the spec's folder
tree, or from anywhere with ``--allow-local-plugins``; a file that fails to import is reported
with its own error, file and line."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pytest

from fairaudit.errors import ExitCode, RunInterrupted, SpecError
from fairaudit.testing.runs import cli, load_result, only_run_dir

USAGE, PLUGIN, INTERRUPTED = int(ExitCode.USAGE_ERROR), int(ExitCode.PLUGIN_ERROR), int(ExitCode.INTERRUPTED)

#: Importing this file creates ``IMPORTED`` beside it: the proof that it was executed.
PLUGIN_SOURCE = textwrap.dedent('''\
    from pathlib import Path

    import numpy as np

    from fairaudit import BaseDebiaser, hookimpl

    Path(__file__).with_name("IMPORTED").write_text("imported")


    class Passthrough(BaseDebiaser):
        """Changes nothing; interrupts the run once (Ctrl-C) when ``interrupt_once`` names a file
        that does not exist yet."""

        name = "marker_debiaser"

        def __init__(self, interrupt_once: str = ""):
            self.interrupt_once = interrupt_once

        def fit(self, X, y, *, sensitive_features):
            if self.interrupt_once and not Path(self.interrupt_once).exists():
                Path(self.interrupt_once).write_text("interrupted")
                raise KeyboardInterrupt("stopped by the test")
            return self

        def transform(self, X):
            return np.asarray(X, dtype=np.float32)


    @hookimpl
    def fairaudit_register_debiasers(registry):
        registry.add(Passthrough)
    ''')

SPEC = textwrap.dedent("""\
    name: plug
    seed: 1
    dataset: {{name: synthetic_embeddings, params: {{n_samples: 200, dim: 8, seed: 1}}}}
    attributes: [sex]
    model: logistic
    debiasers: [{debiaser}]
    metrics: [group_metrics]
    statistics: {{n_boot: 10, n_permutations: 10, min_group_size: 5}}
    report: {{formats: []}}
    plugins: [{plugin}]
    """)


def write_spec(folder: Path, plugin: str, debiaser: str = "marker_debiaser") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(plugin=json.dumps(plugin), debiaser=debiaser))
    return spec


def write_plugin(path: Path, source: str = PLUGIN_SOURCE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return path


def flat(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- validate executes nothing
def test_validate_reads_a_local_plugin_without_importing_it(tmp_path):
    plugin = write_plugin(tmp_path / "spec" / "my_plugin.py")
    spec = write_spec(tmp_path / "spec", "my_plugin.py")
    result = cli("validate", str(spec))
    assert result.exit_code == 0, result.output
    assert not (plugin.parent / "IMPORTED").exists()  # nothing of the file ran
    out = flat(result.output)
    assert "validate reads them without running them" in out
    assert "not verified: debiasers 'marker_debiaser': registered by the local file" in out
    assert "its parameters are checked when run imports it" in out
    assert re.search(r"ok \S*spec\.yaml: dataset 'synthetic_embeddings', model 'logistic', 1 debiaser", out)


def test_validate_still_finds_a_misspelled_local_plugin_name(tmp_path):
    plugin = write_plugin(tmp_path / "my_plugin.py")
    spec = write_spec(tmp_path, "my_plugin.py", debiaser="marker_debiasr")
    result = cli("validate", str(spec))
    assert result.exit_code == USAGE, result.output
    assert re.search(r"spec\.yaml:6:\d+\s+debiasers\[0\]\.name\s+unknown debiasers plugin 'marker_debiasr'\. "
                     r"Did you mean 'marker_debiaser'", flat(result.output)), result.output
    assert not (plugin.parent / "IMPORTED").exists()


def test_validate_says_which_names_it_could_not_verify(tmp_path):
    write_plugin(tmp_path / "dynamic.py", textwrap.dedent('''\
        from fairaudit import hookimpl
        import helpers

        @hookimpl
        def fairaudit_register_debiasers(registry):
            for cls in helpers.make_all():
                registry.add(cls)
        '''))
    spec = write_spec(tmp_path, "dynamic.py", debiaser="made_at_import")
    result = cli("validate", str(spec))
    assert result.exit_code == 0, result.output  # "helpers" is not even installed: nothing was imported
    out = flat(result.output)
    assert "not verified: debiasers 'made_at_import': not among the names the local plugin files register" in out
    assert re.search(r"cannot tell the name registered at \S*dynamic\.py, line 7: registry\.add\(\) of a class "
                     r"whose name is not a string literal of this file \(debiasers\)", out), out


def test_validate_reports_a_plugin_file_that_does_not_parse_at_its_line(tmp_path):
    write_plugin(tmp_path / "broken.py", "from fairaudit import hookimpl\n\ndef oops(:\n    pass\n")
    spec = write_spec(tmp_path, "broken.py")
    result = cli("validate", str(spec))
    assert result.exit_code == USAGE, result.output
    assert re.search(r"spec\.yaml:10:11\s+plugins\[0\]\s+local plugin file \S*broken\.py is not valid Python: "
                     r"SyntaxError: .* \(line 3\)", flat(result.output)), result.output


# ---------------------------------------------------------------- only from the spec's folder tree
@pytest.mark.parametrize("written", ["../outside.py", "ABSOLUTE", "sub/../../outside.py", "link.py"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_plugin_outside_the_spec_folder_is_refused_at_its_line(tmp_path, written, command):
    outside = write_plugin(tmp_path / "outside.py")
    folder = tmp_path / "spec"
    folder.mkdir()
    if written == "ABSOLUTE":
        written = str(outside)
    if written == "link.py":  # a link inside the folder to a file outside it
        (folder / "link.py").symlink_to(outside)
    spec = write_spec(folder, written)
    extra = ["-o", str(tmp_path / "out"), "-q"] if command == "run" else []
    result = cli(command, str(spec), *extra)
    assert result.exit_code == USAGE, result.output
    assert re.search(rf"spec\.yaml:10:11\s+plugins\[0\]\s+local plugin file {re.escape(repr(written))}( \(it "
                     rf"resolves to \S*outside\.py\))? is outside the spec's folder \S*spec: fairaudit loads local "
                     rf"plugin files only from the spec's own folder tree; move it there, or pass "
                     rf"--allow-local-plugins", flat(result.output)), result.output
    assert not (tmp_path / "IMPORTED").exists()
    assert not (tmp_path / "out").exists()  # refused before any run folder


def test_a_plugin_in_a_subfolder_of_the_spec_folder_is_fine(tmp_path):
    write_plugin(tmp_path / "plugins" / "mine.py")
    spec = write_spec(tmp_path, "plugins/../plugins/mine.py")
    assert cli("validate", str(spec)).exit_code == 0


def test_missing_plugin_file_is_a_spec_error(tmp_path):
    spec = write_spec(tmp_path, "nowhere.py")
    for command in ("validate", "run"):
        result = cli(command, str(spec), *(["-o", str(tmp_path / "out")] if command == "run" else []))
        assert result.exit_code == USAGE, result.output
        assert re.search(r"spec\.yaml:10:11\s+plugins\[0\]\s+local plugin file not found: \S*nowhere\.py",
                         flat(result.output)), result.output


def test_validate_accepts_an_outside_file_with_the_flag_and_still_imports_nothing(tmp_path):
    outside = write_plugin(tmp_path / "outside.py")
    spec = write_spec(tmp_path / "spec", str(outside))
    result = cli("validate", str(spec), "--allow-local-plugins")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "IMPORTED").exists()


def test_the_flag_loads_an_outside_plugin_and_resume_needs_it_too(tmp_path):
    """With --allow-local-plugins the outside file is loaded (its debiaser runs, and interrupts the
    run once); the interrupt hint repeats the flag; --resume without it is refused, with it the
    run finishes."""
    outside = write_plugin(tmp_path / "shared" / "outside.py")
    once = tmp_path / "interrupted-once"
    spec = write_spec(tmp_path / "spec", str(outside),
                      debiaser=f"{{name: marker_debiaser, params: {{interrupt_once: {json.dumps(str(once))}}}}}")
    result = cli("run", str(spec), "-o", str(tmp_path / "out"), "-q", "--allow-local-plugins")
    assert result.exit_code == INTERRUPTED, result.output
    assert (outside.parent / "IMPORTED").exists() and once.exists()  # loaded, and its fit ran
    run_dir = only_run_dir(tmp_path / "out")
    assert f"resume with fairaudit run --resume {run_dir} --allow-local-plugins" in flat(result.output)

    (outside.parent / "IMPORTED").unlink()
    refused = cli("run", "--resume", str(run_dir), "-q")
    assert refused.exit_code == USAGE, refused.output
    assert re.search(r"spec\.yaml:10:11\s+plugins\[0\]\s+local plugin file \S*outside\.py' is outside the spec's "
                     r"folder", flat(refused.output)), refused.output
    assert not (outside.parent / "IMPORTED").exists()

    resumed = cli("run", "--resume", str(run_dir), "-q", "--allow-local-plugins")
    assert resumed.exit_code == 0, resumed.output
    assert [a.name for a in load_result(run_dir).arms] == ["baseline", "marker_debiaser"]


def test_resume_of_a_foreign_run_folder_loads_no_code_from_it(tmp_path):
    """A run folder from elsewhere: its spec names a plugin file inside the run folder itself, or
    one outside the folder its manifest records as the spec's: both refused without the flag."""
    run_dir = tmp_path / "foreign" / "plug" / "20260101-000000"
    run_dir.mkdir(parents=True)
    write_plugin(run_dir / "shipped.py")
    (run_dir / "spec.yaml").write_text(SPEC.format(plugin="shipped.py", debiaser="marker_debiaser"))
    (run_dir / "manifest.json").write_text(json.dumps({"spec_name": "plug", "spec_dir": str(run_dir),
                                                       "status": "interrupted", "seed": 1}))
    result = cli("run", "--resume", str(run_dir), "-q")
    assert result.exit_code == USAGE, result.output
    assert re.search(r"plugins\[0\]\s+local plugin file 'shipped\.py' \(it resolves to \S*shipped\.py\) lies "
                     r"inside the run folder \S*, which holds results, never code", flat(result.output)), result.output
    assert not (run_dir / "IMPORTED").exists()

    elsewhere = write_plugin(tmp_path / "elsewhere" / "evil.py")
    spec_dir = tmp_path / "their-spec"
    spec_dir.mkdir()
    (run_dir / "spec.yaml").write_text(SPEC.format(plugin=json.dumps(str(elsewhere)), debiaser="marker_debiaser"))
    (run_dir / "manifest.json").write_text(json.dumps({"spec_name": "plug", "spec_dir": str(spec_dir),
                                                       "status": "interrupted", "seed": 1}))
    result = cli("run", "--resume", str(run_dir), "-q")
    assert result.exit_code == USAGE, result.output
    assert "is outside the spec's folder" in flat(result.output)
    assert not (elsewhere.parent / "IMPORTED").exists()


# ---------------------------------------------------------------- import failures: their own error
@pytest.mark.parametrize("source, error", [
    ("import numpy\nimport fairaudit_no_such_module\n",
     r"ModuleNotFoundError: No module named 'fairaudit_no_such_module' \(\S*bad\.py, line 2\)"),
    ("x = 1\ndef broken(:\n", r"SyntaxError: .*\(\S*bad\.py, line 2\)"),
    ("raise RuntimeError('needs a GPU driver')\n", r"RuntimeError: needs a GPU driver \(\S*bad\.py, line 1\)"),
])
def test_a_plugin_that_fails_to_import_is_reported_with_its_own_error(tmp_path, source, error):
    write_plugin(tmp_path / "bad.py", source)
    spec = write_spec(tmp_path, "bad.py")
    result = cli("run", str(spec), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == PLUGIN, result.output
    out = flat(result.output)
    assert re.search(r"local plugin file \S*bad\.py failed to load: " + error, out), out
    assert "unknown" not in out


# ---------------------------------------------------------------- the notebook API
def test_the_notebook_api_applies_the_same_rule(tmp_path, monkeypatch):
    import fairaudit

    outside = write_plugin(tmp_path / "outside.py")
    spec = write_spec(tmp_path / "spec", str(outside))
    with pytest.raises(SpecError, match="is outside the spec's folder"):
        fairaudit.run(spec, output=tmp_path / "out")
    assert not (tmp_path / "IMPORTED").exists()
    monkeypatch.chdir(tmp_path / "spec")  # a dict spec's relative paths resolve against the current folder
    as_dict = {"name": "plug", "dataset": "synthetic_embeddings", "attributes": ["sex"], "plugins": ["../outside.py"]}
    with pytest.raises(SpecError, match=r"plugins\[0\].*is outside the spec's folder"):
        fairaudit.run(as_dict, output=tmp_path / "out")
    once = tmp_path / "interrupted-once"
    spec = write_spec(tmp_path / "spec", str(outside),
                      debiaser=f"{{name: marker_debiaser, params: {{interrupt_once: {json.dumps(str(once))}}}}}")
    with pytest.raises(RunInterrupted, match=r"--resume \S+ --allow-local-plugins$"):
        fairaudit.run(spec, output=tmp_path / "out", allow_local_plugins=True)
    assert (tmp_path / "IMPORTED").exists()


def test_interrupt_hint_names_the_flag_only_when_the_run_used_it():
    assert str(RunInterrupted("runs/x")).endswith("--resume runs/x")
    assert str(RunInterrupted("runs/x", allow_local_plugins=True)).endswith("--resume runs/x --allow-local-plugins")


def test_scanner_follows_loops_and_parent_classes(tmp_path):
    from fairaudit.spec.plugin_scan import scan_plugin_file

    path = write_plugin(tmp_path / "p.py", textwrap.dedent('''\
        from fairaudit import BaseMetric, BaseDebiaser, hookimpl

        class Common(BaseDebiaser):
            name = "common"

        class Child(Common):
            pass

        class Other(BaseDebiaser):
            name: str = "other"

        class Score(BaseMetric):
            name = "score_metric"

        @hookimpl
        def fairaudit_register_debiasers(registry):
            for cls in (Child, Other):
                registry.add(cls)

        @hookimpl
        def fairaudit_register_metrics(registry):
            registry.add(Score)
            helper(registry)
        '''))
    scanned = scan_plugin_file(path)
    assert [(r.family, r.name) for r in scanned.registered] == [
        ("debiasers", "common"), ("debiasers", "other"), ("metrics", "score_metric")]
    assert [(family, line) for family, line, _ in scanned.dynamic] == [("metrics", 23)]
    assert not os.path.exists(tmp_path / "IMPORTED")
