"""Load a spec from YAML safely and report every problem at once with file:line:col."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from fairaudit.errors import PluginNotFound, SpecError, SpecIssue
from fairaudit.spec.models import AuditSpec

if TYPE_CHECKING:
    from fairaudit.plugins import PluginSet

#: Friendlier wording for pydantic's most common messages.
FRIENDLY = {
    "extra_forbidden": "unknown field (typo?); remove it or check the spelling",
    "missing": "required field is missing",
}


@dataclass
class LoadedSpec:
    """A validated spec with its source (for positions, the run folder copy and relative paths)."""

    spec: AuditSpec
    path: Path
    text: str
    tree: Any

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def _read_text(path: Path) -> str:
    if not path.exists():
        raise SpecError([SpecIssue(str(path), None, None, "", "spec file not found")])
    if path.is_dir():
        raise SpecError([SpecIssue(str(path), None, None, "", "is a folder, not a YAML file")])
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([SpecIssue(str(path), None, None, "", f"not UTF-8 text ({exc.reason} at byte "
                                   f"{exc.start}); is this really a YAML spec?")]) from None


def _parse(text: str, file: str) -> Any:
    """Parse safely (no python tags) and keep positions (round-trip tree)."""
    if not text.strip():
        raise SpecError([SpecIssue(file, None, None, "", "spec file is empty")])
    try:
        YAML(typ="safe", pure=True).load(io.StringIO(text))  # refuses python/object tags
        tree = YAML(typ="rt").load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SpecError([SpecIssue(file, line, col, "", f"invalid YAML: {problem}")]) from None
    except YAMLError as exc:
        raise SpecError([SpecIssue(file, None, None, "", f"invalid YAML: {exc}")]) from None
    if not isinstance(tree, CommentedMap):
        raise SpecError([SpecIssue(file, 1, 1, "", "a spec must be a YAML mapping (key: value) at the top "
                                   f"level, not {type(tree).__name__}")])
    return tree


def position(tree: Any, loc: tuple[Any, ...]) -> tuple[int | None, int | None]:
    """1-based line and column of ``loc`` in the round-trip tree (nearest existing parent)."""
    line, col = 1, 1
    node = tree
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            ln, cl = node.lc.key(key)
            line, col = ln + 1, cl + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            ln, cl = node.lc.item(key)
            line, col = ln + 1, cl + 1
            node = node[key]
        else:
            break
    return line, col


def _loc_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _issues_from(exc: pydantic.ValidationError, tree: Any, file: str,
                 prefix: tuple[Any, ...] = ()) -> list[SpecIssue]:
    issues: list[SpecIssue] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(p for p in err["loc"] if not _is_noise(p))
        msg = FRIENDLY.get(err["type"], err["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        key = (_loc_str(loc), msg)
        if key in seen:
            continue
        seen.add(key)
        line, col = position(tree, loc)
        raw = err.get("input")
        shown = None if err["type"] in ("missing",) or isinstance(raw, dict | list) else repr(raw)
        issues.append(SpecIssue(file, line, col, _loc_str(loc), msg, shown))
    return issues


def _is_noise(part: Any) -> bool:
    return isinstance(part, str) and (part.startswith("function-") or part in ("tagged-union", "literal"))


def load_spec_text(text: str, file: str = "<spec>", *, plugins: PluginSet | None = None) -> LoadedSpec:
    """Validate ``text``; with ``plugins``, also plugin names and their parameters."""
    tree = _parse(text, file)
    plain = YAML(typ="safe", pure=True).load(io.StringIO(text))
    try:
        spec = AuditSpec.model_validate(plain)
    except pydantic.ValidationError as exc:
        issues = _issues_from(exc, tree, file)
        if plugins is not None:
            issues += _component_issues_raw(plain, tree, file, plugins)
        raise SpecError(sorted(issues, key=_order)) from None
    loaded = LoadedSpec(spec, Path(file), text, tree)
    if plugins is not None:
        issues = check_components(loaded, plugins)
        if issues:
            raise SpecError(sorted(issues, key=_order))
    return loaded


def _order(issue: SpecIssue) -> tuple[int, int]:
    return (issue.line or 0, issue.col or 0)


def load_spec(path: str | Path, *, plugins: PluginSet | None = None) -> LoadedSpec:
    """Read and validate the spec at ``path`` (see :func:`load_spec_text`)."""
    p = Path(path)
    loaded = load_spec_text(_read_text(p), str(p), plugins=plugins)
    loaded.path = p
    return loaded


def check_components(loaded: LoadedSpec, plugins: PluginSet) -> list[SpecIssue]:
    """Stage two: each component's name exists in its family and its params validate."""
    issues: list[SpecIssue] = []
    for family, dotted, comp in loaded.spec.components():
        loc = tuple(int(p) if p.isdigit() else p for p in dotted.split("."))
        issues += _check_one(family, loc, comp.name, comp.params, loaded.tree, str(loaded.path), plugins)
    return issues


def _component_issues_raw(plain: Any, tree: Any, file: str, plugins: PluginSet) -> list[SpecIssue]:
    """Best-effort plugin checks when stage one already failed (so all errors show at once)."""
    issues: list[SpecIssue] = []
    if not isinstance(plain, dict):
        return issues
    fields = {"dataset": "datasets", "model": "models", "debiasers": "debiasers",
              "generators": "generators", "metrics": "metrics"}
    for field, family in fields.items():
        value = plain.get(field)
        items = value if isinstance(value, list) else [value] if value is not None else []
        for i, item in enumerate(items):
            loc: tuple[Any, ...] = (field, i) if isinstance(value, list) else (field,)
            name = item if isinstance(item, str) else item.get("name") if isinstance(item, dict) else None
            params = item.get("params", {}) if isinstance(item, dict) else {}
            if isinstance(name, str) and isinstance(params, dict):
                issues += _check_one(family, loc, name, params, tree, file, plugins)
    return issues


def _check_one(family: str, loc: tuple[Any, ...], name: str, params: dict[str, Any], tree: Any,
               file: str, plugins: PluginSet) -> list[SpecIssue]:
    from fairaudit.params import params_model

    registry = plugins.registry(family)
    try:
        cls = registry.get(name)
    except PluginNotFound as exc:
        failure = plugins.failure_for(name)
        msg = str(exc) if failure is None else f"plugin {name!r} is installed but failed to load: {failure.error}"
        line, col = position(tree, (*loc, "name")) if _has_key(tree, loc, "name") else position(tree, loc)
        return [SpecIssue(file, line, col, _loc_str((*loc, "name")), msg)]
    try:
        params_model(cls).model_validate(params)
    except pydantic.ValidationError as exc:
        return _issues_from(exc, tree, file, (*loc, "params"))
    return []


def _has_key(tree: Any, loc: tuple[Any, ...], key: str) -> bool:
    node = tree
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(node, CommentedMap) and key in node
