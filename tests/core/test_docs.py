"""The documentation stays true to the code: hooks, spec reference, runnable examples, links.

``docs/spec-reference.md`` is compared with the code only in its core part (spec fields and
built-in plugins, between the ``fairaudit-core`` markers), regenerated here with the builtins
alone, so the test does not depend on which third-party plugins are installed.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import json
import re
import sys
import types
from pathlib import Path

import jinja2
import pytest

from fairaudit import hookspecs
from fairaudit.base import (
    BaseDatasetLoader,
    BaseDebiaser,
    BaseGenerator,
    BaseMetric,
    BaseModel,
    BaseReportSection,
    Plugin,
)
from fairaudit.params import params_model
from fairaudit.plugins import PluginSet, load_plugins
from fairaudit.registry import Registry
from fairaudit.results import ArmResult, AuditResult, MetricResult
from fairaudit.spec.models import AuditSpec
from fairaudit.spec.schema import (
    CORE_BEGIN,
    CORE_END,
    FIELD_NOTES,
    REGENERATE,
    _spec_models,
    core_markdown,
    core_part,
    spec_markdown,
)
from fairaudit.testing import check_plugin, checks_for
from fairaudit.testing.runs import cli

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
MARKDOWN = sorted(DOCS.glob("*.md"))


@pytest.fixture(scope="module")
def builtins() -> PluginSet:
    return load_plugins(autoload=False)


def _hook_names() -> list[str]:
    return sorted(n for n, f in vars(hookspecs).items() if n.startswith("fairaudit_") and callable(f))


def _python_blocks(text: str) -> list[tuple[bool, str]]:
    """(marked runnable, source) of every python code block."""
    pattern = re.compile(r"(<!-- runnable -->\n)?```python\n(.*?)```", re.S)
    return [(bool(m.group(1)), m.group(2)) for m in pattern.finditer(text)]


def test_docs_exist():
    assert {p.name for p in MARKDOWN} >= {"writing-plugins.md", "hooks.md", "spec-reference.md", "architecture.md"}


def test_every_hookspec_is_in_the_hook_reference():
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    names = _hook_names()
    assert len(names) == 6
    for name in names:
        assert f"### `{name}(registry)`" in text, f"docs/hooks.md has no section for {name}"


def test_docs_name_only_real_hooks():
    names = set(_hook_names())
    for path in [*MARKDOWN, REPO / "README.md"]:
        for hook in set(re.findall(r"fairaudit_register_\w+", path.read_text(encoding="utf-8"))):
            assert hook in names, f"{path.name} mentions {hook}, which fairaudit/hookspecs.py does not define"


def test_spec_markdown_has_every_field_and_builtin_parameters(builtins):
    text = spec_markdown(builtins)
    for field in AuditSpec.model_fields:
        assert f"| `{field}` |" in text, field
    sections = text.split("\n### ")
    for model, _ in _spec_models():
        section = next(s for s in sections if f"`{model.__name__}`" in s.split("\n", 1)[0])
        for field in model.model_fields:
            assert f"| `{field}` |" in section, f"{model.__name__}.{field}"
    cls = builtins.datasets.get("synthetic_embeddings")
    section = text.split("#### `synthetic_embeddings`", 1)[1].split("\n#### ", 1)[0]
    for param in params_model(cls).model_fields:
        assert f"| `{param}` |" in section, param
    assert "| `n_samples` | `int` | `2000` |" in section
    assert "No third-party plugin is installed" in text  # autoload off: only the core


def test_every_spec_field_has_a_description():
    for model, _ in _spec_models():
        for name, field in model.model_fields.items():
            assert field.description or FIELD_NOTES.get(f"{model.__name__}.{name}"), \
                f"{model.__name__}.{name} has no description: add Field(description=...) in fairaudit/spec/models.py"


def test_field_notes_name_real_fields():
    fields = {f"{m.__name__}.{f}" for m, _ in _spec_models() for f in m.model_fields}
    assert set(FIELD_NOTES) <= fields, sorted(set(FIELD_NOTES) - fields)


def test_committed_spec_reference_is_up_to_date(builtins):
    committed = (DOCS / "spec-reference.md").read_text(encoding="utf-8")
    assert committed.startswith("# Spec reference") and CORE_BEGIN in committed and CORE_END in committed
    fresh = core_markdown(builtins)
    if core_part(committed) != fresh:
        diff = difflib.unified_diff(core_part(committed).splitlines(), fresh.splitlines(), "committed", "code",
                                    lineterm="", n=0)
        pytest.fail(f"docs/spec-reference.md is stale; run: {REGENERATE}\n" + "\n".join(list(diff)[:30]))


def test_schema_command_formats(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRAUDIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    as_json = cli("schema", catch_exceptions=True)
    assert as_json.exit_code == 0, as_json.output
    assert set(json.loads(as_json.output)["x-fairaudit-plugins"]) == {
        "datasets", "models", "debiasers", "generators", "metrics"}
    local = tmp_path / "local_metric.py"
    local.write_text(
        "from fairaudit import BaseMetric, hookimpl\n\n"
        "class Local(BaseMetric):\n"
        "    name = 'local_probe_metric'\n"
        "    description = 'A metric from a local file'\n"
        "    def __init__(self, *, strength: float = 0.5):\n"
        "        self.strength = strength\n"
        "    def compute(self, ctx):\n"
        "        return []\n\n"
        "@hookimpl\n"
        "def fairaudit_register_metrics(registry):\n"
        "    registry.add(Local)\n", encoding="utf-8")
    md = cli("schema", "--format", "markdown", "--plugin", str(local), catch_exceptions=True)
    assert md.exit_code == 0, md.output
    assert md.output.startswith("# Spec reference")
    installed = md.output.split("## Installed plugins", 1)[1]
    assert "#### `local_probe_metric`" in installed and "| `strength` | `float` | `0.5` |" in installed
    bad = cli("schema", "--format", "yaml", catch_exceptions=True)
    assert bad.exit_code == 4 and "markdown" in bad.output


def test_python_blocks_parse_and_their_fairaudit_imports_exist():
    for path in [*MARKDOWN, REPO / "README.md"]:
        for _, source in _python_blocks(path.read_text(encoding="utf-8")):
            tree = ast.parse(source)  # a SyntaxError names the block
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "fairaudit":
                    module = importlib.import_module(node.module or "")
                    for alias in node.names:
                        assert hasattr(module, alias.name), f"{path.name}: {node.module} has no {alias.name}"


def _exec_block(source: str, index: int) -> types.ModuleType:
    module = types.ModuleType(f"fairaudit_docs_example_{index}")
    sys.modules[module.__name__] = module  # the kit pickles fitted debiasers: their class must be importable
    exec(compile(source, f"docs/writing-plugins.md#runnable-{index}", "exec"), module.__dict__)
    return module


def test_runnable_examples_register_and_pass_the_kit():
    blocks = [src for runnable, src in _python_blocks((DOCS / "writing-plugins.md").read_text()) if runnable]
    assert len(blocks) >= 4
    seen: set[type] = set()
    try:
        for index, source in enumerate(blocks):
            module = _exec_block(source, index)
            classes = [v for v in vars(module).values()
                       if isinstance(v, type) and issubclass(v, Plugin) and v.__module__ == module.__name__]
            assert len(classes) == 1, f"runnable block {index} should define one plugin class"
            cls = classes[0]
            registry = Registry(cls.family)
            getattr(module, f"fairaudit_register_{cls.family}")(registry=registry)
            assert registry.get(cls.name) is cls
            seen.add(next(b for b in (BaseDebiaser, BaseMetric, BaseDatasetLoader, BaseGenerator, BaseModel,
                                      BaseReportSection) if issubclass(cls, b)))
            if issubclass(cls, BaseReportSection):
                _render_section(cls())
            else:
                check_plugin(cls)
    finally:
        for name in [m for m in sys.modules if m.startswith("fairaudit_docs_example_")]:
            sys.modules.pop(name)
    assert {BaseDebiaser, BaseMetric, BaseDatasetLoader, BaseReportSection} <= seen


def _render_section(section: BaseReportSection) -> None:
    gap = MetricResult(metric="equal_opportunity_difference", plugin="group_metrics", attribute="sex", value=0.12)
    arm = ArmResult(name="baseline", kind="baseline", metrics=[gap])
    result = AuditResult(name="demo", title="Demo", created="2025-01-01T00:00:00", arms=[arm])
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    assert section.context(result, None) is None
    html = env.from_string(section.template).render(**section.context(result, arm))
    assert "equal_opportunity_difference" in html and "0.120" in html


def test_every_kit_check_is_documented():
    text = (DOCS / "writing-plugins.md").read_text(encoding="utf-8")
    for base in (BaseDebiaser, BaseMetric, BaseGenerator, BaseModel, BaseDatasetLoader):
        for check in checks_for(base):
            assert f"`{check.__name__}`" in text, check.__name__


def test_relative_links_resolve():
    for path in [*MARKDOWN, REPO / "README.md"]:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            assert (path.parent / target.split("#")[0]).exists(), f"{path.name}: broken link {target}"


def test_readme_links_the_docs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Documentation", 1)[1]
    for name in ("docs/writing-plugins.md", "docs/hooks.md", "docs/spec-reference.md", "docs/architecture.md"):
        assert f"]({name})" in section
