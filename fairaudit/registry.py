"""Registries that plugins fill through the ``fairaudit_register_<family>`` hooks."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from fairaudit.errors import DuplicatePluginError, PluginError, PluginNotFound

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
    """Name -> class for one plugin family; duplicate names are an error naming both sources."""

    def __init__(self, family: str):
        if family not in FAMILIES:
            raise ValueError(f"unknown plugin family {family!r}")
        self.family = family
        self._entries: dict[str, Entry] = {}
        self._current_source = PluginSource("<unknown>")

    def set_source(self, source: PluginSource) -> None:
        self._current_source = source

    def add(self, cls: type) -> type:
        """Register ``cls`` under ``cls.name``; returns ``cls`` so it can be used as a decorator."""
        from fairaudit.base import Plugin

        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{cls!r} registered by {self._current_source} has no 'name'")
        if not (isinstance(cls, type) and issubclass(cls, Plugin)):
            raise PluginError(f"{cls!r} ({name!r}) from {self._current_source} is not a fairaudit Plugin")
        if getattr(cls, "family", None) != self.family:
            raise PluginError(
                f"{cls.__name__} ({name!r}) from {self._current_source} is a "
                f"{getattr(cls, 'family', '?')} plugin, registered as {self.family}"
            )
        if name in self._entries:
            other = self._entries[name]
            if other.cls is cls:
                return cls
            raise DuplicatePluginError(
                f"{self.family} plugin name {name!r} is registered twice: by {other.source} "
                f"and by {self._current_source}"
            )
        self._entries[name] = Entry(cls, self._current_source)
        return cls

    def get(self, name: str) -> type:
        try:
            return self._entries[name].cls
        except KeyError:
            raise PluginNotFound(self.family, name, self.suggest(name), self.names()) from None

    def source(self, name: str) -> PluginSource:
        return self._entries[name].source

    def suggest(self, name: str) -> list[str]:
        return difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, Entry]]:
        return sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def create(self, name: str, params: dict[str, Any] | None = None) -> Any:
        """Instantiate plugin ``name`` with validated ``params``."""
        from fairaudit.params import validate_params

        cls = self.get(name)
        return cls(**validate_params(cls, params or {}))
