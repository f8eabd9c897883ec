"""Registry and plugin loading: builtins via hooks, broken plugins reported, duplicates named."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from fairaudit.base import BaseDebiaser
from fairaudit.errors import DuplicatePluginError, PluginError, PluginNotFound
from fairaudit.plugins import BUILTIN_PLUGINS, load_plugins
from fairaudit.registry import PluginSource, Registry


class _Identity(BaseDebiaser):
    name = "identity_test"

    def fit(self, X, y, *, sensitive_features):
        self.fitted_ = True
        return self

    def transform(self, X):
        return X


def test_builtins_register_through_the_same_hooks():
    ps = load_plugins(autoload=False)
    assert {p.name for p in ps.loaded} == set(BUILTIN_PLUGINS)
    assert {"logistic", "mlp", "cnn"} <= set(ps.models.names())
    assert all(p.builtin for p in ps.loaded)


def test_unknown_name_suggests_close_matches():
    ps = load_plugins(autoload=False)
    with pytest.raises(PluginNotFound) as info:
        ps.models.get("logistik")
    assert "Did you mean 'logistic'" in str(info.value)
    assert "Installed: cnn, logistic, mlp" in str(info.value)


def test_duplicate_names_name_both_sources():
    registry = Registry("debiasers")
    registry.set_source(PluginSource("first_plugin", "dist-a", "1.0"))
    registry.add(_Identity)

    class Other(_Identity):
        name = "identity_test"

    registry.set_source(PluginSource("second_plugin", "dist-a", "1.0"))
    with pytest.raises(DuplicatePluginError) as info:  # one distribution registering a name twice
        registry.add(Other)
    assert "first_plugin (dist-a==1.0)" in str(info.value) and "second_plugin (dist-a==1.0)" in str(info.value)
    assert registry.get("identity_test") is _Identity


def test_wrong_family_is_rejected():
    with pytest.raises(PluginError, match="registered as models"):
        Registry("models").add(_Identity)


def _fake_distribution(tmp_path: Path, dist: str, ep_name: str, module: str, source: str) -> None:
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[fairaudit]\n{ep_name} = {module}\n")


def test_broken_entry_point_is_listed_and_others_still_load(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "fairaudit-broken", "broken", "fa_broken_mod",
                       "raise ImportError('missing dependency: torchxrayvision')\n")
    _fake_distribution(tmp_path, "fairaudit-good", "good", "fa_good_mod", """
        from fairaudit import hookimpl, BaseDebiaser

        class Good(BaseDebiaser):
            name = "good_debiaser"
            def fit(self, X, y, *, sensitive_features):
                return self
            def transform(self, X):
                return X

        @hookimpl
        def fairaudit_register_debiasers(registry):
            registry.add(Good)
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("FAIRAUDIT_STRICT_PLUGINS", raising=False)
    ps = load_plugins(autoload=True)
    assert "good_debiaser" in ps.debiasers
    failure = ps.failure_for("broken")
    assert failure is not None and failure.distribution == "fairaudit-broken"
    assert "torchxrayvision" in failure.error
    monkeypatch.setenv("FAIRAUDIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="torchxrayvision"):
        load_plugins(autoload=True)
    for mod in ("fa_good_mod", "fa_broken_mod"):
        sys.modules.pop(mod, None)


def test_plugin_registering_a_duplicate_is_rolled_back(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "fairaudit-dupe", "dupe", "fa_dupe_mod", """
        from fairaudit import hookimpl, BaseModel

        class Mine(BaseModel):
            name = "dupe_model"
            def fit(self, X, y, *, sample_weight=None):
                return self
            def predict_proba(self, X):
                return X[:, 0]

        class Clash(Mine):
            pass

        @hookimpl
        def fairaudit_register_models(registry):
            registry.add(Mine)
            registry.add(Clash)  # the same name again, from the same distribution
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("FAIRAUDIT_STRICT_PLUGINS", raising=False)
    ps = load_plugins(autoload=True)
    failure = ps.failure_for("dupe")
    assert failure is not None and "registered twice" in failure.error
    assert "dupe_model" not in ps.models  # the whole plugin was rolled back
    assert ps.models.source("logistic").distribution == "fairaudit"
    sys.modules.pop("fa_dupe_mod", None)
