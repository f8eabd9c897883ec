"""Read a local plugin file without running it: which names it registers, found with ``ast``.

``fairaudit validate`` imports nothing a spec names (a local plugin is code).  It parses each
``plugins:`` file instead and follows the ``fairaudit_register_<family>(registry)`` hooks:
``registry.add(Cls)`` and ``for cls in (A, B): registry.add(cls)`` with classes of the file whose
``name`` is a string literal (directly or from a parent class in the file) are *registered*;
anything else (a name computed at import time, the registry handed to a helper) is *dynamic*:
that family's unknown names cannot be verified without importing the file.  Each name found is
registered as a stand-in class that accepts any parameters (their check waits for ``run``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fairaudit.errors import PluginError
from fairaudit.registry import FAMILIES, PluginSource

if TYPE_CHECKING:
    from fairaudit.plugins import PluginSet

HOOK = "fairaudit_register_"


@dataclass(frozen=True)
class Registered:
    family: str
    name: str
    line: int


@dataclass
class ScannedFile:
    """What a plugin file registers, as far as reading it shows."""

    path: Path
    registered: list[Registered] = field(default_factory=list)
    #: ``(family, line, why)`` of each registration whose name reading cannot tell.
    dynamic: list[tuple[str, int, str]] = field(default_factory=list)


def scan_plugin_file(path: Path) -> ScannedFile:
    """Parse ``path`` (never import it); raises ``SyntaxError``, ``UnicodeDecodeError`` or
    ``OSError`` for a file that cannot be read as Python."""
    tree = ast.parse(Path(path).read_bytes(), filename=str(path))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    scanned = ScannedFile(Path(path))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(HOOK):
            family = node.name[len(HOOK):]
            if family in FAMILIES:
                _scan_hook(node, family, classes, scanned)
    return scanned


def _scan_hook(func: ast.FunctionDef | ast.AsyncFunctionDef, family: str, classes: dict[str, ast.ClassDef],
               scanned: ScannedFile) -> None:
    params = [a.arg for a in func.args.args + func.args.kwonlyargs]
    if "registry" not in params:
        scanned.dynamic.append((family, func.lineno, f"{func.name} takes no 'registry' argument"))
        return
    loops = _loop_targets(func)
    adds: set[int] = set()
    for node in ast.walk(func):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "registry"):
            adds.add(id(node.func.value))
            arg = node.args[0] if len(node.args) == 1 and not node.keywords else None
            for cls_name in _class_names(arg, loops):
                name = _class_attr(cls_name, "name", classes) if cls_name is not None else None
                if name is None:
                    scanned.dynamic.append((family, node.lineno, "registry.add() of a class whose name is "
                                                                 "not a string literal of this file"))
                else:
                    scanned.registered.append(Registered(family, name, node.lineno))
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and node.id == "registry" and id(node) not in adds \
                and not isinstance(node.ctx, ast.Store):
            scanned.dynamic.append((family, node.lineno, "the registry is used other than by registry.add(Class)"))
            break


def _loop_targets(func: ast.AST) -> dict[str, list[str | None]]:
    """``for x in (A, B, ...)`` loops: the loop variable -> the class names it takes."""
    out: dict[str, list[str | None]] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) \
                and isinstance(node.iter, ast.Tuple | ast.List):
            out[node.target.id] = [e.id if isinstance(e, ast.Name) else None for e in node.iter.elts]
    return out


def _class_names(arg: ast.expr | None, loops: dict[str, list[str | None]]) -> list[str | None]:
    if not isinstance(arg, ast.Name):
        return [None]
    return loops.get(arg.id, [arg.id])


def _class_attr(cls_name: str, attr: str, classes: dict[str, ast.ClassDef], depth: int = 0) -> str | None:
    """A string literal class attribute, looked up through the file's own parent classes."""
    node = classes.get(cls_name)
    if node is None or depth > 20:
        return None
    for stmt in node.body:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, ast.AnnAssign):
            targets = [stmt.target]
        value = getattr(stmt, "value", None)
        if any(isinstance(t, ast.Name) and t.id == attr for t in targets):
            return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            found = _class_attr(base.id, attr, classes, depth + 1)
            if found is not None:
                return found
    return None


# ---------------------------------------------------------------- stand-ins for validate
def stand_in(family: str, name: str, path: Path) -> type:
    """A class registered in place of ``name`` from ``path``: it accepts any parameters."""
    import pydantic

    from fairaudit import base

    parent = {"datasets": base.BaseDatasetLoader, "models": base.BaseModel, "debiasers": base.BaseDebiaser,
              "generators": base.BaseGenerator, "metrics": base.BaseMetric,
              "report_sections": base.BaseReportSection}[family]
    params = pydantic.create_model(f"Unverified{family.title()}Params",
                                   __config__=pydantic.ConfigDict(extra="allow"))
    def __init__(self: object, **params: object) -> None:  # any parameters: checked when run imports the file
        self.params = params

    return type(f"Unverified_{name}", (parent,), {
        "__init__": __init__, "name": name, "family": family, "Params": params, "__abstractmethods__": frozenset(),
        "description": f"local plugin of {path} (read, not imported)", "unverified_file": str(path),
        "__module__": __name__,
    })


def register_scanned(plugins: PluginSet, scanned: ScannedFile) -> str | None:
    """Register stand-ins for the names ``scanned`` registers and note its dynamic families;
    returns an error (a name the file registers twice) or ``None``."""
    for family, _, _ in scanned.dynamic:
        plugins.unverified.setdefault(family, []).append(str(scanned.path))
    for reg in scanned.registered:
        registry = plugins.registry(reg.family)
        registry.set_source(PluginSource(str(scanned.path)))
        try:
            registry.add(stand_in(reg.family, reg.name, scanned.path))
        except PluginError as exc:
            return str(exc)
    return None


def is_stand_in(cls: type) -> bool:
    """Whether ``cls`` is a stand-in of :func:`stand_in` (its parameters were not checked)."""
    return isinstance(getattr(cls, "unverified_file", None), str)
