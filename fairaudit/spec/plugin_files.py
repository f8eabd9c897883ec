"""Which local plugin files (a spec's ``plugins: [file.py]``) may be loaded.

A local plugin is code: loading it runs it with the user's rights.  ``fairaudit run`` loads a
local plugin file only from inside the spec's own folder tree (paths are resolved, symlinks
included, so neither an absolute path nor ``..`` nor a link can reach outside), unless the user
passes ``--allow-local-plugins``; ``--resume`` of a run folder applies the same rule to the
folder the run recorded as its spec's, and never loads code from inside the run folder itself.
``fairaudit validate`` imports none of them (see :mod:`fairaudit.spec.plugin_scan`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairaudit.errors import SpecError, SpecIssue

#: What the user can do about a refused file (in every message).
ALLOW_HINT = "pass --allow-local-plugins to load it from elsewhere (a local plugin is code: only if you trust it)"


@dataclass(frozen=True)
class LocalPlugin:
    """One entry of ``plugins:``: its index, the text as written and the resolved file."""

    index: int
    written: str
    path: Path


@dataclass(frozen=True)
class LocalPlugins:
    """The local plugin files of a spec, with the spec's tree for positions of later issues."""

    spec_file: str
    tree: Any
    files: tuple[LocalPlugin, ...]

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(f.path for f in self.files)

    def issue(self, plugin: LocalPlugin, msg: str) -> SpecIssue:
        """A problem of ``plugin`` at its line in the spec (field ``plugins[i]``)."""
        from fairaudit.spec.loader import position

        line, col = position(self.tree, ("plugins", plugin.index))
        return SpecIssue(self.spec_file, line, col, f"plugins[{plugin.index}]", msg)


def local_plugins(spec_path: str | Path, *, root: str | Path | None = None, allow_outside: bool = False,
                  run_dir: str | Path | None = None) -> LocalPlugins:
    """The ``plugins:`` files of the spec at ``spec_path``, resolved against ``root`` (default:
    the spec's folder) and checked without reading them: each exists, is a file, and lies inside
    ``root``'s tree (unless ``allow_outside``) and outside ``run_dir`` (the run folder being
    resumed).  Every problem raises one :class:`SpecError` at the entries' lines (exit 4); a spec
    that is not YAML raises its own; a ``plugins`` that is not a list of strings gives no files
    (the spec's validation reports it)."""
    from fairaudit.spec.loader import _parse, _read_text

    path = Path(spec_path)
    tree, plain = _parse(_read_text(path), str(path))
    base = Path(root) if root is not None else path.parent
    listed = plain.get("plugins")
    entries = [(i, p) for i, p in enumerate(listed) if isinstance(p, str)] if isinstance(listed, list) else []
    found = LocalPlugins(str(path), tree, tuple(LocalPlugin(i, p, (base / p).resolve()) for i, p in entries))
    issues = [issue for plugin in found.files
              for issue in _problems(found, plugin, base.resolve(), allow_outside, run_dir)]
    if issues:
        raise SpecError(issues)
    return found


def _problems(found: LocalPlugins, plugin: LocalPlugin, root: Path, allow_outside: bool,
              run_dir: str | Path | None) -> list[SpecIssue]:
    where = "" if str(plugin.path) == plugin.written else f" (it resolves to {plugin.path})"
    if run_dir is not None and plugin.path.is_relative_to(Path(run_dir).resolve()) and not allow_outside:
        return [found.issue(plugin, f"local plugin file {plugin.written!r}{where} lies inside the run folder "
                                    f"{run_dir}, which holds results, never code: a run folder from elsewhere "
                                    f"could ship it; {ALLOW_HINT}")]
    if not allow_outside and not plugin.path.is_relative_to(root):
        return [found.issue(plugin, f"local plugin file {plugin.written!r}{where} is outside the spec's folder "
                                    f"{root}: fairaudit loads local plugin files only from the spec's own "
                                    f"folder tree; move it there, or {ALLOW_HINT}")]
    if not plugin.path.exists():
        return [found.issue(plugin, f"local plugin file not found: {plugin.path}")]
    if not plugin.path.is_file():
        return [found.issue(plugin, f"local plugin file {plugin.path} is not a file (a folder?): name a .py file")]
    return []
