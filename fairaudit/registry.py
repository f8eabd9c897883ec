"""Registries that plugins fill through the ``fairaudit_register_<family>`` hooks; a name two
distributions register is ambiguous until qualified (``distribution:name``)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from fairaudit.errors import AmbiguousPluginError, DuplicatePluginError, PluginError, PluginNotFound

#: The qualifier of plugins from local files (``plugins:`` in a spec), which have no distribution.
LOCAL = "local"

FAMILIES = ("datasets", "models", "debiasers", "generators", "metrics", "report_sections")


@dataclass(frozen=True)
class PluginSource:
    """Where a registered class came from."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.distribution:
            return f"{self.plugin} ({self.distribution}=={self.version})"
        return self.plugin


@dataclass(frozen=True)
class Entry:
    cls: type
    source: PluginSource


class Registry:
    """Name -> class for one plugin family.

    A name registered by two distributions is *ambiguous*: both entries are kept (and listed),
    but using the bare name is an error naming both; ``distribution:name`` (e.g.
    ``fairaudit-advvae:advvae``) picks one.  Built-ins belong to the ``fairaudit`` distribution,
    local plugin files to ``local``.  One distribution registering a name twice is an error
    naming both sources (the second registration is refused).
    """

    def __init__(self, family: str):
        if family not in FAMILIES:
            raise ValueError(f"unknown plugin family {family!r}")
        self.family = family
        self._entries: dict[str, list[Entry]] = {}
        self._current_source = PluginSource("<unknown>")

    def set_source(self, source: PluginSource) -> None:
        self._current_source = source

    def snapshot(self) -> dict[str, list[Entry]]:
        """The registrations so far (to :meth:`restore` when a plugin fails half-way)."""
        return {name: list(entries) for name, entries in self._entries.items()}

    def restore(self, snap: dict[str, list[Entry]]) -> None:
        self._entries = {name: list(entries) for name, entries in snap.items()}

    def add(self, cls: type) -> type:
        """Register ``cls`` under ``cls.name``; returns ``cls`` so it can be used as a decorator."""
        from fairaudit.base import Plugin

        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{cls!r} registered by {self._current_source} has no 'name'")
        if ":" in name:
            raise PluginError(f"{cls.__name__} ({name!r}) from {self._current_source}: a plugin name cannot "
                              "contain ':' (it separates a distribution from a name)")
        if not (isinstance(cls, type) and issubclass(cls, Plugin)):
            raise PluginError(f"{cls!r} ({name!r}) from {self._current_source} is not a fairaudit Plugin")
        if getattr(cls, "family", None) != self.family:
            raise PluginError(
                f"{cls.__name__} ({name!r}) from {self._current_source} is a "
                f"{getattr(cls, 'family', '?')} plugin, registered as {self.family}"
            )
        entries = self._entries.setdefault(name, [])
        if any(e.cls is cls for e in entries):
            return cls
        mine = qualifier(self._current_source)
        same = next((e for e in entries if qualifier(e.source) == mine), None)
        if same is not None:
            raise DuplicatePluginError(
                f"{self.family} plugin name {name!r} is registered twice: by {same.source} "
                f"and by {self._current_source}"
            )
        entries.append(Entry(cls, self._current_source))
        return cls

    def entry(self, name: str) -> Entry:
        """The entry of ``name`` or ``distribution:name``; :class:`PluginNotFound` when none,
        :class:`AmbiguousPluginError` when several distributions register the bare name."""
        dist, _, bare = name.rpartition(":")
        entries = self._entries.get(bare, [])
        if dist:
            found = [e for e in entries if qualifier(e.source) == dist]
            if not found:
                raise PluginNotFound(self.family, name, self.suggest(name), self.names(),
                                     registered_by=[qualifier(e.source) for e in entries])
            return found[0]
        if len(entries) > 1:
            raise AmbiguousPluginError(self.family, bare, [e.source for e in entries])
        if not entries:
            raise PluginNotFound(self.family, name, self.suggest(name), self.names())
        return entries[0]

    def get(self, name: str) -> type:
        return self.entry(name).cls

    def source(self, name: str) -> PluginSource:
        """Where ``name`` comes from (``KeyError`` when unknown or ambiguous)."""
        try:
            return self.entry(name).source
        except PluginError as exc:
            raise KeyError(name) from exc

    def suggest(self, name: str) -> list[str]:
        return difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)

    def names(self) -> list[str]:
        """The names a spec can use: each unambiguous name, and ``distribution:name`` for each
        registration of an ambiguous one."""
        return [name for name, _ in self.items()]

    def items(self) -> list[tuple[str, Entry]]:
        """``(name, entry)`` of every registration; an ambiguous name appears once per
        distribution, qualified (``distribution:name``)."""
        out: list[tuple[str, Entry]] = []
        for name, entries in self._entries.items():
            if len(entries) == 1:
                out.append((name, entries[0]))
            else:
                out += [(f"{qualifier(e.source)}:{name}", e) for e in entries]
        return sorted(out, key=lambda item: item[0])

    def ambiguous(self) -> dict[str, list[Entry]]:
        """Names registered by more than one distribution, with their entries."""
        return {name: list(entries) for name, entries in sorted(self._entries.items()) if len(entries) > 1}

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.entry(name)
        except PluginError:
            return False
        return True

    def __len__(self) -> int:
        return len(self.items())

    def create(self, name: str, params: dict[str, Any] | None = None) -> Any:
        """Instantiate plugin ``name`` with validated ``params``."""
        from fairaudit.params import validate_params

        cls = self.get(name)
        return cls(**validate_params(cls, params or {}))


def qualifier(source: PluginSource) -> str:
    """The distribution part of a qualified name: the distribution, or ``local`` for a file."""
    return source.distribution or LOCAL
