"""Load a spec from YAML safely and report every problem at once with file:line:col."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from fairaudit.errors import AmbiguousPluginError, PluginNotFound, SpecError, SpecIssue
from fairaudit.spec.components import normalise_component, raw_components
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


#: Limits that keep a hostile spec from exhausting memory or the stack (an alias "bomb", a
#: self-referencing alias, brackets nested thousands deep); real specs are far below them.
MAX_NODES = 100_000
MAX_BYTES = 1 << 20
MAX_DEPTH = 50
#: An alias (``*name``) where a value starts.
_ALIAS = re.compile(r"(^|[\s\[{,])\*[^\s,\]}]", re.MULTILINE)


def _read_text(path: Path) -> str:
    if not path.exists():
        raise SpecError([SpecIssue(str(path), None, None, "", "spec file not found")])
    if path.is_dir():
        raise SpecError([SpecIssue(str(path), None, None, "", "is a folder, not a YAML file")])
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SpecError([SpecIssue(str(path), None, None, "", f"the file has {size:,} bytes; a spec is a small "
                                   f"YAML text file (at most {MAX_BYTES:,} bytes): is this really a spec?")])
    data = path.read_bytes()
    wide = _wide_encoding(data)
    if wide is not None:
        raise SpecError([SpecIssue(str(path), 1, 1, "", f"the file is {wide[0]} text{wide[1]}; save the spec "
                                   "as UTF-8")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        kind = "a binary file, not UTF-8 text" if b"\x00" in data[:4096] else "not UTF-8 text"
        raise SpecError([SpecIssue(str(path), line, col, "", f"{kind}: byte 0x{data[exc.start]:02X} at "
                                   f"byte offset {exc.start} cannot be decoded as UTF-8 ({exc.reason}); "
                                   "a spec is a UTF-8 YAML text file")]) from None


def _wide_encoding(data: bytes) -> tuple[str, str] | None:
    """``("UTF-16", " (little-endian, no byte-order mark)")`` and the like when ``data`` is UTF-16 or
    UTF-32 text, told by its byte-order mark or, without one, by where the zero bytes of the
    first characters fall (YAML's own rule for detecting an encoding); else ``None``."""
    for bom, name, order in ((b"\xff\xfe\x00\x00", "UTF-32", "little"), (b"\x00\x00\xfe\xff", "UTF-32", "big"),
                             (b"\xff\xfe", "UTF-16", "little"), (b"\xfe\xff", "UTF-16", "big")):
        if data.startswith(bom):
            return name, f" ({order}-endian; it starts with a {name} byte-order mark)"
    head = data[:64]
    if len(head) < 4:
        return None
    quads = [head[i::4] for i in range(4)]
    pairs = [head[i::2] for i in range(2)]
    zero = [not any(q) for q in quads]
    if zero[1] and zero[2] and zero[3] and any(quads[0]):
        return "UTF-32", " (little-endian, no byte-order mark)"
    if zero[0] and zero[1] and zero[2] and any(quads[3]):
        return "UTF-32", " (big-endian, no byte-order mark)"
    if not any(pairs[1]) and any(pairs[0]):
        return "UTF-16", " (little-endian, no byte-order mark)"
    if not any(pairs[0]) and any(pairs[1]):
        return "UTF-16", " (big-endian, no byte-order mark)"
    return None


def _too_many_values(text: str, file: str) -> None:
    """Refuse, before parsing (which takes minutes on such a file), a spec that plainly holds more
    than :data:`MAX_NODES` values: each list item, key and flow value takes a line or a comma."""
    estimate = text.count(",") + text.count("\n") + 1
    if estimate <= MAX_NODES:
        return
    lines = text.count("\n") + 1
    raise SpecError([SpecIssue(file, None, None, "", f"the file holds about {estimate:,} values ({lines:,} lines, "
                               f"{text.count(','):,} commas); a spec holds at most {MAX_NODES:,}: is data pasted "
                               "into it? Keep data in a file the dataset reads (dataset.params.path)")])


def _parse(text: str, file: str) -> tuple[Any, Any]:
    """Parse safely (no python tags) and keep positions: (round-trip tree, plain data)."""
    if not text.strip():
        raise SpecError([SpecIssue(file, None, None, "", "spec file is empty")])
    _too_many_values(text, file)
    line, col = _too_deep_at(text)
    if line is not None:
        raise SpecError([SpecIssue(file, line, col, "", f"invalid YAML: brackets nested more than {MAX_DEPTH} "
                                   "levels deep (a spec is a few levels deep)")])
    try:
        plain = YAML(typ="safe", pure=True).load(io.StringIO(text))  # refuses python/object tags
        tree = YAML(typ="rt").load(io.StringIO(text))
    except MarkedYAMLError as exc:
        raise SpecError([_yaml_issue(exc, text, file)]) from None
    except YAMLError as exc:
        raise SpecError([SpecIssue(file, None, None, "", f"invalid YAML: {exc}")]) from None
    except RecursionError:
        line, col = _too_deep_at(text)
        raise SpecError([SpecIssue(file, line, col, "", f"invalid YAML: nested too deeply to read "
                                   f"(a spec is a few levels deep; the limit is {MAX_DEPTH})")]) from None
    if plain is None:
        raise SpecError([SpecIssue(file, None, None, "", "spec file has no content (only comments or "
                                   "blank lines)")])
    if not isinstance(tree, CommentedMap) or not isinstance(plain, dict):
        raise SpecError([SpecIssue(file, 1, 1, "", "a spec must be a YAML mapping (key: value lines) at "
                                   f"the top level, not {_kind(plain)}")])
    _check_size(plain, tree, file, aliased=_ALIAS.search(text) is not None)
    return tree, plain


def _too_deep_at(text: str) -> tuple[int | None, int | None]:
    """Line and column where ``[``/``{`` brackets first nest deeper than ``MAX_DEPTH`` (outside
    quotes and comments); checked before parsing, which slows down with the square of the depth."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        quote = ""
        for col, char in enumerate(line, start=1):
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char == "#" and (col == 1 or line[col - 2] in " \t"):
                break
            else:
                depth += (char in "[{") - (char in "]}")
                if depth > MAX_DEPTH:
                    return number, col
    return None, None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a single string ({value[:40]!r})"
    return f"a single {type(value).__name__} value"


def _yaml_issue(exc: MarkedYAMLError, text: str, file: str) -> SpecIssue:
    """A syntax or tag error as one issue, in words, at its line and column."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    col = mark.column + 1 if mark else None
    for explain in (_tag_message, _tab_message, _bracket_message, _duplicate_message):
        found = explain(exc)
        if found is not None:
            msg, with_field = found
            return SpecIssue(file, line, col, _loc_at(text, line, col) if with_field else "", msg)
    return SpecIssue(file, line, col, "", f"invalid YAML: {_yaml_words(exc)}")


def _tag_message(exc: MarkedYAMLError) -> tuple[str, bool] | None:
    tag = re.search(r"constructor for the tag '([^']*)'", str(exc.problem or ""))
    if not tag:
        return None
    name = tag.group(1).replace("tag:yaml.org,2002:", "!!")
    if "python/" in name:
        return (f"the YAML tag {name!r} is refused: the spec loader has no constructor for Python "
                "objects (they could run code); a spec is plain data, and nothing in it was run"), True
    return (f"unknown YAML tag {name!r}: a spec is plain data (mappings, lists, strings, "
            "numbers, booleans); remove the tag"), True


def _tab_message(exc: MarkedYAMLError) -> tuple[str, bool] | None:
    if "'\\t'" not in str(exc.problem or ""):
        return None
    return ("invalid YAML: a tab character where YAML expects indentation or a value; indent with "
            "spaces, never tabs"), False


def _bracket_message(exc: MarkedYAMLError) -> tuple[str, bool] | None:
    opened = re.search(r"while parsing a flow (sequence|mapping)", str(exc.context or ""))
    if not opened or exc.context_mark is None:
        return None
    bracket = "[" if opened.group(1) == "sequence" else "{"
    cm = exc.context_mark
    return (f"invalid YAML: the {bracket!r} opened at line {cm.line + 1}, column {cm.column + 1} is "
            f"not closed ({exc.problem or ''})"), False


def _duplicate_message(exc: MarkedYAMLError) -> tuple[str, bool] | None:
    problem = str(exc.problem or "")
    if "found duplicate key" not in problem:
        return None
    return f"invalid YAML: {problem}; each key may appear once", False


def _yaml_words(exc: MarkedYAMLError) -> str:
    """The parser's own context and problem, with the context's position when on another line."""
    context = str(exc.context or "")
    cm, pm = exc.context_mark, exc.problem_mark
    if cm is not None and pm is not None and cm.line != pm.line:
        context += f" (line {cm.line + 1}, column {cm.column + 1})"
    return " ".join(p for p in (context, str(exc.problem or "")) if p.strip())


def _loc_at(text: str, line: int | None, col: int | None) -> str:
    """Field path of the last key at or before ``line:col`` (the round-trip loader keeps
    unknown tags as plain data, so it can read a spec the safe loader refuses)."""
    if line is None:
        return ""
    try:
        tree = YAML(typ="rt").load(io.StringIO(text))
    except Exception:  # the position is enough without a path
        return ""
    target = (line, col or 1)
    best: tuple[tuple[int, int], tuple[Any, ...]] = ((0, 0), ())
    stack: list[tuple[Any, tuple[Any, ...]]] = [(tree, ())]
    while stack:
        node, loc = stack.pop()
        if len(loc) > MAX_DEPTH:
            continue
        for pos, key in _key_positions(node):
            if pos > target:
                continue
            if pos >= best[0]:
                best = (pos, (*loc, key))
            stack.append((node[key], (*loc, key)))
    return field_path(best[1])


def _key_positions(node: Any) -> list[tuple[tuple[int, int], Any]]:
    """1-based (line, column) of each key of a round-trip mapping or index of a sequence."""
    if isinstance(node, CommentedMap):
        keys: list[Any] = list(node)
    elif isinstance(node, CommentedSeq):
        keys = list(range(len(node)))
    else:
        return []
    data = node.lc.data or {}
    return [((data[k][0] + 1, data[k][1] + 1), k) for k in keys if data.get(k)]


def _check_size(plain: Any, tree: Any, file: str, *, aliased: bool = True) -> None:
    """Refuse aliases that refer to themselves or expand to a huge or very deep document
    (``aliased``: the text uses aliases, so a huge document is called an alias bomb)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, loc: tuple[Any, ...]) -> int:
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Refused(loc, "an alias (*name) refers to the list or mapping that contains it, "
                                "which would never end")
        if len(loc) > MAX_DEPTH:
            raise _Refused(loc, f"nested more than {MAX_DEPTH} levels deep")
        active.add(key)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        total = 1
        for k, child in items:
            total += size(child, (*loc, k))
            if total > MAX_NODES:
                raise _Refused(loc, f"the YAML expands to more than {MAX_NODES:,} values (aliases "
                                    "repeating aliases: an 'alias bomb'?)" if aliased else
                               f"the spec holds more than {MAX_NODES:,} values; is data pasted into it? "
                               "Keep data in a file the dataset reads (dataset.params.path)")
        active.discard(key)
        sizes[key] = total
        return total

    try:
        size(plain, ())
    except _Refused as exc:
        line, col = position(tree, exc.loc)
        raise SpecError([SpecIssue(file, line, col, field_path(exc.loc), exc.msg)]) from None


class _Refused(Exception):
    def __init__(self, loc: tuple[Any, ...], msg: str):
        super().__init__(msg)
        self.loc, self.msg = loc, msg


def position(tree: Any, loc: tuple[Any, ...]) -> tuple[int | None, int | None]:
    """1-based line and column of ``loc`` in the round-trip tree (nearest existing parent)."""
    line, col = 1, 1
    node = tree
    for key in loc:
        inside = (isinstance(node, CommentedMap) and key in node) or (
            isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node))
        mark = (node.lc.data or {}).get(key) if inside else None
        if not mark:
            break
        line, col = mark[0] + 1, mark[1] + 1
        node = node[key]
    return line, col


def issue_at(loaded: LoadedSpec, loc: tuple[Any, ...], msg: str) -> SpecIssue:
    """``msg`` as a problem of the spec's field at ``loc``, with its file, line and column."""
    line, col = position(loaded.tree, loc)
    return SpecIssue(str(loaded.path), line, col, field_path(loc), msg)


def field_path(loc: tuple[Any, ...]) -> str:
    """``("dataset", "params", "sensitive", 0)`` -> ``"dataset.params.sensitive[0]"``."""
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
        key = (field_path(loc), msg)
        if key in seen:
            continue
        seen.add(key)
        line, col = position(tree, loc)
        raw = err.get("input")
        shown = None if err["type"] in ("missing",) or isinstance(raw, dict | list) else repr(raw)
        issues.append(SpecIssue(file, line, col, field_path(loc), msg, shown))
    return issues


def _is_noise(part: Any) -> bool:
    return isinstance(part, str) and (part.startswith("function-") or part in ("tagged-union", "literal"))


def load_spec_text(text: str, file: str = "<spec>", *, plugins: PluginSet | None = None) -> LoadedSpec:
    """Validate ``text``; with ``plugins``, also plugin names and their parameters."""
    tree, plain = _parse(text, file)
    try:
        spec = AuditSpec.model_validate(plain)
    except pydantic.ValidationError as exc:
        issues = _relocated(_issues_from(exc, tree, file), plain, tree, file)
        if plugins is not None:
            issues += _component_issues_raw(plain, tree, file, plugins)
        raise SpecError(sorted(issues, key=_order)) from None
    loaded = LoadedSpec(spec, Path(file), text, tree)
    from fairaudit.spec.compare_with import compare_with_issues

    issues = compare_with_issues(loaded)
    if plugins is not None:
        issues += check_components(loaded, plugins)
    if issues:
        raise SpecError(sorted(issues, key=_order))
    return loaded


def _relocated(issues: list[SpecIssue], plain: Any, tree: Any, file: str) -> list[SpecIssue]:
    """Intersection problems at their entry's line (pydantic places them at the spec's top)."""
    from fairaudit.spec.compat import intersection_issues

    about = ("intersections use attributes", "each intersection lists")
    kept = [i for i in issues if not i.msg.startswith(about)]
    if len(kept) == len(issues):
        return issues
    precise = intersection_issues(plain, file, tree)
    return kept + precise if precise else issues


def _order(issue: SpecIssue) -> tuple[int, int]:
    return (issue.line or 0, issue.col or 0)


def load_spec(path: str | Path, *, plugins: PluginSet | None = None) -> LoadedSpec:
    """Read and validate the spec at ``path`` (see :func:`load_spec_text`)."""
    p = Path(path)
    loaded = load_spec_text(_read_text(p), str(p), plugins=plugins)
    loaded.path = p
    return loaded


def check_components(loaded: LoadedSpec, plugins: PluginSet) -> list[SpecIssue]:
    """Stage two: each component's name exists in its family and its params validate; a dataset
    of scores comes without the fields that train or split (see :func:`_scores_issues`); then every
    threshold names a metric result, attribute and arm the audit can produce."""
    issues: list[SpecIssue] = []
    for family, dotted, comp in loaded.spec.components():
        loc = tuple(int(p) if p.isdigit() else p for p in dotted.split("."))
        issues += _check_one(family, loc, comp.name, comp.params, loaded.tree, str(loaded.path), plugins)
    spec = loaded.spec
    given = {f for f in spec.model_fields_set if f not in ("debiasers", "generators") or getattr(spec, f)}
    issues += _scores_issues(spec.dataset.name, given, [m.name for m in spec.metrics], loaded.tree,
                             str(loaded.path), plugins)
    if not issues:  # thresholds and cross-field checks need plugins that load and validate
        from fairaudit.spec.compat import compat_issues
        from fairaudit.spec.thresholds import threshold_issues

        issues += threshold_issues(loaded, plugins) + compat_issues(loaded, plugins)
    return issues


def _component_issues_raw(plain: Any, tree: Any, file: str, plugins: PluginSet) -> list[SpecIssue]:
    """Best-effort plugin checks when stage one already failed (so all errors show at once)."""
    if not isinstance(plain, dict):
        return []
    issues = [issue for family, loc, name, params in raw_components(plain)
              for issue in _check_one(family, loc, name, params, tree, file, plugins)]
    dataset = normalise_component(plain.get("dataset"))
    listed = plain.get("metrics")
    metrics = [_raw_name(m) for m in listed] if isinstance(listed, list) else []
    given = {k for k, v in plain.items() if k not in ("debiasers", "generators") or v}
    if isinstance(dataset, dict) and isinstance(dataset.get("name"), str):
        issues += _scores_issues(dataset["name"], given, metrics, tree, file, plugins)
    return issues


def _raw_name(item: Any) -> str | None:
    comp = normalise_component(item)
    name = comp.get("name") if isinstance(comp, dict) else None
    return name if isinstance(name, str) else None


#: Spec fields an audit of given scores has no use for, and why (the message names the field).
SCORES_REFUSE = {
    "model": "no model is trained or run: the scores in the data are audited as given; remove `model`",
    "split": ("nothing is split: every row is test data (mark validation rows, which only fix operating "
              "points, with dataset.params.split_column); remove `split`"),
    "debiasers": ("a debiaser retrains a model on its inputs, and an audit of given scores has neither; "
                  "remove `debiasers` (several models' scores are compared with `score: {name: column}`)"),
    "generators": ("a generator retrains a model on generated images, and an audit of given scores has "
                   "neither; remove `generators`"),
    "repeats": "no model is trained, so there is no training seed to repeat; remove `repeats`",
}


def _scores_issues(dataset: str, given: set[str], metrics: list[str | None], tree: Any, file: str,
                   plugins: PluginSet) -> list[SpecIssue]:
    """A dataset that provides scores (``provides_scores``) trains nothing and splits nothing:
    ``model``, ``split``, debiasers and generators given with it are errors at their line, and so
    is a metric that needs a model's features or counterfactual images."""
    try:
        cls = plugins.registry("datasets").get(dataset)
    except (PluginNotFound, AmbiguousPluginError):  # reported by the component checks
        return []
    if not getattr(cls, "provides_scores", False):
        return []
    issues = []
    for name, why in SCORES_REFUSE.items():
        if name in given:
            line, col = position(tree, (name,))
            issues.append(SpecIssue(file, line, col, name, f"dataset {dataset!r} gives a model's scores: {why}"))
    for i, metric in enumerate(metrics):
        try:
            needs = set(getattr(plugins.registry("metrics").get(metric), "requires", ())) if metric else set()
        except (PluginNotFound, AmbiguousPluginError):
            continue
        lacking = sorted(needs - {"scores"})
        if lacking:
            line, col = position(tree, ("metrics", i))
            issues.append(SpecIssue(file, line, col, f"metrics[{i}]", f"metric {metric!r} needs "
                                    f"{' and '.join(lacking)} of a model, which dataset {dataset!r} does not have "
                                    "(scores only); remove it"))
    return issues


def _check_one(family: str, loc: tuple[Any, ...], name: str, params: dict[str, Any], tree: Any,
               file: str, plugins: PluginSet) -> list[SpecIssue]:
    from fairaudit.params import params_model

    registry = plugins.registry(family)
    try:
        cls = registry.get(name)
    except (PluginNotFound, AmbiguousPluginError) as exc:
        failure = plugins.failure_for(name) if isinstance(exc, PluginNotFound) else None
        if family in plugins.unverified and isinstance(exc, PluginNotFound):
            return []  # a local file registers names of this family that only importing it shows
        msg = str(exc) if failure is None else f"plugin {name!r} is installed but failed to load: {failure.error}"
        line, col = position(tree, (*loc, "name")) if _has_key(tree, loc, "name") else position(tree, loc)
        return [SpecIssue(file, line, col, field_path((*loc, "name")), msg)]
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
