"""What a run tells the user as it goes (console lines) and keeps for the report (warnings,
timings)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

Say = Callable[[str], None]
T = TypeVar("T")


def quiet(msg: str) -> None:
    """A ``say`` that prints nothing."""


@dataclass
class RunLog:
    """Console lines (``say``), the warnings kept for ``result.json`` and the timings (seconds,
    keyed ``load_data``, ``<arm>.fit``, ``<arm>.metrics.<metric>``...)."""

    say: Say = quiet
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def timed(self, key: str, fn: Callable[[], T]) -> T:
        """``fn()``, its wall time recorded under ``key`` (even when it raises)."""
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.timings[key] = round(time.perf_counter() - start, 3)

    def warn(self, message: str, *, announce: bool = False) -> None:
        """Keep ``message`` for the report (and print it now when ``announce``)."""
        self.warnings.append(message)
        if announce:
            self.say(f"warning: {message}")

    def keeping_warnings(self, fn: Callable[[], T], *, categories: tuple[type[Warning], ...] = (Warning,),
                         announce: bool = True) -> T:
        """``fn()``, with the Python warnings it raises (of ``categories``) kept for the report
        and, when ``announce``, shown as they happen."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn()
        for w in caught:
            if issubclass(w.category, categories):
                self.warn(str(w.message), announce=announce)
        return result

    def timings_of(self, arm_name: str) -> dict[str, float]:
        """The timings of one arm: its own key and every ``<arm>.<step>`` key."""
        return {k: v for k, v in self.timings.items() if k == arm_name or k.startswith(f"{arm_name}.")}


def elapsed_since(start: float) -> float:
    return round(time.perf_counter() - start, 3)

