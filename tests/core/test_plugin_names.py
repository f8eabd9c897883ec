"""A plugin name registered by two distributions (issue 15, item 4) is ambiguous: both are kept and
listed, using the bare name is a spec error naming both distributions (exit 4), and a spec picks
one as ``distribution:name``.  Built-ins belong to the ``fairaudit`` distribution.  The
distributions here are fake ones written to ``tmp_path`` (a ``.dist-info`` with entry points)."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

from fairaudit.base import BaseDebiaser
from fairaudit.errors import AmbiguousPluginError, ExitCode, PluginNotFound
from fairaudit.plugins import load_plugins
from fairaudit.registry import PluginSource, Registry
from fairaudit.testing.runs import cli, load_result, only_run_dir

USAGE = int(ExitCode.USAGE_ERROR)

#: A debiaser named ``twin`` whose ``fit`` writes ``<tag>`` into the file named by FIT_LOG.
TWIN = """
    import os
    import numpy as np
    from fairaudit import hookimpl, BaseDebiaser

    class Twin(BaseDebiaser):
        name = "twin"
        description = "twin from {tag}"

        def fit(self, X, y, *, sensitive_features):
            with open(os.environ["FIT_LOG"], "a") as fh:
                fh.write("{tag}\\n")
            return self

        def transform(self, X):
            return np.asarray(X, dtype=np.float32)

    @hookimpl
    def fairaudit_register_debiasers(registry):
        registry.add(Twin)
"""

#: A model named like the built-in ``logistic``.
IMPOSTOR_LOGISTIC = """
    from fairaudit import hookimpl, BaseModel

    class Logistic(BaseModel):
        name = "logistic"
        def fit(self, X, y, *, sample_weight=None):
            raise RuntimeError("the impostor ran")
        def predict_proba(self, X):
            raise RuntimeError("the impostor ran")

    @hookimpl
    def fairaudit_register_models(registry):
        registry.add(Logistic)
"""


def fake_distribution(root: Path, dist: str, module: str, source: str, ep_name: str | None = None) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[fairaudit]\n{ep_name or module} = {module}\n")


@pytest.fixture
def twins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two distributions, ``fa-alpha`` and ``fa-beta``, each registering a debiaser ``twin`` through
    an entry point of the same name; a third registers a model ``logistic`` like the built-in."""
    root = tmp_path / "site"
    root.mkdir()
    fake_distribution(root, "fa-alpha", "fa_alpha_twin", TWIN.replace("{tag}", "alpha"), ep_name="twin")
    fake_distribution(root, "fa-beta", "fa_beta_twin", TWIN.replace("{tag}", "beta"), ep_name="twin")
    fake_distribution(root, "fa-impostor", "fa_impostor_logistic", IMPOSTOR_LOGISTIC)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("FAIRAUDIT_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("FAIRAUDIT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("FIT_LOG", str(tmp_path / "fit.log"))
    yield tmp_path
    for mod in ("fa_alpha_twin", "fa_beta_twin", "fa_impostor_logistic"):
        sys.modules.pop(mod, None)


SPEC = textwrap.dedent("""\
    name: names
    seed: 2
    dataset: {{name: synthetic_embeddings, params: {{n_samples: 200, dim: 8, seed: 2}}}}
    attributes: [sex]
    model: {model}
    debiasers:
      - name: {debiaser}
    metrics: [group_metrics]
    statistics: {{n_boot: 10, n_permutations: 10, min_group_size: 5}}
    report: {{formats: [html]}}
    """)


def write_spec(folder: Path, model: str = "fairaudit:logistic", debiaser: str = "fa-beta:twin") -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(model=model, debiaser=debiaser))
    return spec


# ---------------------------------------------------------------- the registry
class _A(BaseDebiaser):
    name = "same"

    def fit(self, X, y, *, sensitive_features):
        return self

    def transform(self, X):
        return X


class _B(_A):
    pass


def test_registry_keeps_both_and_refuses_the_bare_name():
    registry = Registry("debiasers")
    registry.set_source(PluginSource("a_plugin", "dist-a", "1.0"))
    registry.add(_A)
    assert registry.get("same") is _A and registry.get("dist-a:same") is _A
    registry.set_source(PluginSource("b_plugin", "dist-b", "2.0"))
    registry.add(_B)
    with pytest.raises(AmbiguousPluginError) as info:
        registry.get("same")
    assert str(info.value) == ("debiasers plugin name 'same' is ambiguous: it is registered by a_plugin "
                               "(dist-a==1.0) and by b_plugin (dist-b==2.0); name the one you mean as "
                               "'dist-a:same' or 'dist-b:same'")
    assert registry.get("dist-a:same") is _A and registry.get("dist-b:same") is _B
    assert registry.names() == ["dist-a:same", "dist-b:same"]
    assert "same" not in registry and "dist-b:same" in registry
    assert registry.source("dist-b:same").version == "2.0"
    with pytest.raises(PluginNotFound, match="distribution 'dist-c' does not register 'same'; it is registered "
                                             "by 'dist-a', 'dist-b'"):
        registry.get("dist-c:same")


def test_builtins_are_qualified_by_the_fairaudit_distribution():
    ps = load_plugins(autoload=False)
    assert ps.models.get("fairaudit:logistic") is ps.models.get("logistic")
    assert ps.models.source("logistic").distribution == "fairaudit"


# ---------------------------------------------------------------- installed distributions
def test_two_distributions_registering_one_name_are_both_loaded_not_broken(twins):
    ps = load_plugins(autoload=True)
    assert ps.failures == []  # neither is rolled back as broken
    assert ps.debiasers.get("fa-alpha:twin").description == "twin from alpha"
    assert ps.debiasers.get("fa-beta:twin").description == "twin from beta"
    assert sorted(ps.models.ambiguous()) == ["logistic"]
    with pytest.raises(AmbiguousPluginError, match=r"fa-alpha==1\.0.*fa-beta==1\.0"):
        ps.debiasers.get("twin")


def test_using_an_ambiguous_name_is_a_spec_error_naming_both_distributions(twins):
    spec = write_spec(twins, model="logistic", debiaser="twin")
    for command in ("validate", "run"):
        extra = ["-o", str(twins / "out"), "-q"] if command == "run" else []
        result = cli(command, str(spec), *extra)
        assert result.exit_code == USAGE, result.output
        out = " ".join(result.output.split())
        assert "The spec has 2 problem(s)" in out
        assert re.search(r"spec\.yaml:5:1\s+model\.name\s+models plugin name 'logistic' is ambiguous: it is registered "
                         r"by fairaudit\.builtin\.models \(fairaudit==\S+\) and by fa_impostor_logistic "
                         r"\(fa-impostor==1\.0\); name the one you mean as 'fairaudit:logistic' or "
                         r"'fa-impostor:logistic'", out), out
        assert re.search(r"spec\.yaml:7:5\s+debiasers\[0\]\.name\s+debiasers plugin name 'twin' is ambiguous: it is "
                         r"registered by twin \(fa-alpha==1\.0\) and by twin \(fa-beta==1\.0\)", out), out
    assert not (twins / "fit.log").exists() and not (twins / "out").exists()


def test_a_qualified_name_runs_the_distribution_named(twins):
    spec = write_spec(twins)
    assert cli("validate", str(spec)).exit_code == 0
    result = cli("run", str(spec), "-o", str(twins / "out"), "-q")
    assert result.exit_code == 0, result.output
    assert (twins / "fit.log").read_text() == "beta\n"  # fa-beta's twin, never fa-alpha's; never the impostor
    result = load_result(only_run_dir(twins / "out"))
    assert [(a.name, a.plugin) for a in result.arms] == [("baseline", "fairaudit:logistic"), ("twin", "fa-beta:twin")]


def test_plugins_command_lists_both_registrations(twins):
    result = cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    twins_listed = [(r["name"], r["distribution"], r["qualified"], r["ambiguous"])
                    for r in listing["registered"] if r["family"] == "debiasers" and r["name"] == "twin"]
    assert twins_listed == [("twin", "fa-alpha", "fa-alpha:twin", True), ("twin", "fa-beta", "fa-beta:twin", True)]
    assert {"family": "models", "name": "logistic", "distributions": ["fairaudit", "fa-impostor"],
            "use": ["fairaudit:logistic", "fa-impostor:logistic"]} in listing["ambiguous"]
    text = " ".join(cli("plugins").output.split())
    assert ("AMBIGUOUS debiasers name 'twin' is registered by fa-alpha and fa-beta: a spec must name one as "
            "'fa-alpha:twin' or 'fa-beta:twin'") in text
