"""A fresh, safely loaded plugin manager per run: builtins, entry points, local files."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pluggy

from fairaudit import hookspecs
from fairaudit.errors import PluginError, PluginLoadError
from fairaudit.registry import FAMILIES, PluginSource, Registry

ENTRY_POINT_GROUP = "fairaudit"

#: Built-in plugin modules, registered through the same hooks as third-party ones.
BUILTIN_PLUGINS = (
    "fairaudit.builtin.datasets",
    "fairaudit.builtin.models",
    "fairaudit.builtin.debiasers",
    "fairaudit.builtin.metrics",
)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be imported or registered."""

    name: str
    distribution: str | None
    version: str | None
    error: str
    traceback: str


@dataclass
class LoadedPlugin:
    name: str
    module: str
    distribution: str | None
    version: str | None
    builtin: bool
    path: str | None


@dataclass
class PluginSet:
    """The registries of one run plus what was loaded and what failed."""

    manager: pluggy.PluginManager
    registries: dict[str, Registry]
    loaded: list[LoadedPlugin] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    #: Families in which a local file, read without importing it, registers names that only
    #: importing would show (``fairaudit validate``): unknown names there are not errors.
    unverified: dict[str, list[str]] = field(default_factory=dict)

    def registry(self, family: str) -> Registry:
        return self.registries[family]

    @property
    def datasets(self) -> Registry:
        return self.registries["datasets"]

    @property
    def models(self) -> Registry:
        return self.registries["models"]

    @property
    def debiasers(self) -> Registry:
        return self.registries["debiasers"]

    @property
    def generators(self) -> Registry:
        return self.registries["generators"]

    @property
    def metrics(self) -> Registry:
        return self.registries["metrics"]

    @property
    def report_sections(self) -> Registry:
        return self.registries["report_sections"]

    def failure_for(self, name: str) -> PluginFailure | None:
        return next((f for f in self.failures if f.name == name), None)

    def versions(self) -> dict[str, str | None]:
        """Plugin module -> distribution version (for provenance)."""
        return {p.name: p.version for p in self.loaded}


def _strict() -> bool:
    return os.environ.get("FAIRAUDIT_STRICT_PLUGINS", "") not in ("", "0")


def _register_module(
    pm: pluggy.PluginManager,
    registries: dict[str, Registry],
    module: ModuleType,
    source: PluginSource,
) -> None:
    """Register ``module``'s hookimpls and call them; undo on failure."""
    pm.register(module, name=f"{source.distribution}:{source.plugin}" if source.distribution else source.plugin)
    try:
        for family in FAMILIES:
            registry = registries[family]
            registry.set_source(source)
            hook = getattr(pm.hook, f"fairaudit_register_{family}")
            for impl in hook.get_hookimpls():
                if impl.plugin is module:
                    impl.function(registry=registry)
    except Exception:
        pm.unregister(module)
        raise


def _snapshot(registries: dict[str, Registry]) -> dict[str, dict]:
    return {fam: reg.snapshot() for fam, reg in registries.items()}


def _restore(registries: dict[str, Registry], snap: dict[str, dict]) -> None:
    for fam, entries in snap.items():
        registries[fam].restore(entries)


def load_plugins(
    *,
    autoload: bool | None = None,
    local_files: tuple[Path, ...] = (),
) -> PluginSet:
    """Build a fresh plugin manager with builtins, installed entry points and local files.

    An installed plugin that fails to import or register is recorded in ``failures`` and does
    not stop the others (set ``FAIRAUDIT_STRICT_PLUGINS=1`` to raise instead); a local file
    that fails raises :class:`PluginLoadError` with its own error (file and line).  A local
    file is code: callers decide which files may be loaded (see :mod:`fairaudit.spec.plugin_files`).
    Autoloading of entry points can be switched off with ``FAIRAUDIT_DISABLE_PLUGIN_AUTOLOAD=1``.
    """
    if autoload is None:
        autoload = os.environ.get("FAIRAUDIT_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registries = {family: Registry(family) for family in FAMILIES}
    plugin_set = PluginSet(pm, registries)
    version = md.version("fairaudit") if _has_dist("fairaudit") else None

    def attempt(name: str, load, source: PluginSource, builtin: bool, path: str | None) -> None:
        snap = _snapshot(registries)
        try:
            module = load()
            _register_module(pm, registries, module, source)
        except Exception as exc:
            _restore(registries, snap)
            if path is not None:  # a file the spec names: its own error, never "unknown plugin"
                raise PluginLoadError(local_failure(Path(path), exc)) from exc
            if _strict() or builtin:
                raise PluginLoadError(f"plugin {source} failed to load: {exc}") from exc
            plugin_set.failures.append(
                PluginFailure(name, source.distribution, source.version, f"{type(exc).__name__}: {exc}",
                              traceback.format_exc())
            )
            return
        plugin_set.loaded.append(
            LoadedPlugin(name, module.__name__, source.distribution, source.version, builtin,
                         path or getattr(module, "__file__", None))
        )

    for modname in BUILTIN_PLUGINS:
        attempt(modname, lambda m=modname: importlib.import_module(m),
                PluginSource(modname, "fairaudit", version), True, None)

    if autoload:
        seen: set[tuple[str | None, str]] = set()
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else None
            dver = ep.dist.version if ep.dist is not None else None
            if (dist, ep.name) in seen:  # the same distribution found twice on sys.path
                continue
            seen.add((dist, ep.name))
            attempt(ep.name, ep.load, PluginSource(ep.name, dist, dver), False, None)

    for path in local_files:
        attempt(str(path), lambda p=path: _import_file(p), PluginSource(str(path)), False, str(path))

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # pragma: no cover - caught at register time
        raise PluginError(str(exc)) from exc
    return plugin_set


def _has_dist(name: str) -> bool:
    try:
        md.version(name)
    except md.PackageNotFoundError:
        return False
    return True


def _import_file(path: Path) -> ModuleType:
    """Import a local plugin file (``plugins: [./my_plugin.py]`` in a spec)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"local plugin file not found: {path}")
    modname = f"fairaudit_local_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module


def local_failure(path: Path, exc: BaseException) -> str:
    """``local plugin file X failed to import: Error: message (file, line N)``: the error of a
    local plugin file itself, at the innermost line of that file (or of the file it imported)."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}, line {exc.lineno})"
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        mine = [f for f in frames if Path(f.filename).resolve() == Path(path).resolve()]
        frame = mine[-1] if mine else (frames[-1] if frames else None)
        if frame is not None and "importlib" not in frame.filename:
            where = f" ({frame.filename}, line {frame.lineno})"
    return f"local plugin file {path} failed to load: {type(exc).__name__}: {exc}{where}"
