"""A console line every so often while one long step runs (a metric's bootstrap on a large test
set can take minutes), so that a run never looks stuck."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Seconds between two "still running" lines.
EVERY_S = 30.0


@contextmanager
def heartbeat(say: Callable[[str], None], what: str, every: float = EVERY_S) -> Iterator[None]:
    """While the ``with`` body runs, ``say("<what>: still running (N s)")`` every ``every`` seconds
    (from a daemon thread that stops, and is joined, when the body ends)."""
    stop = threading.Event()
    start = time.perf_counter()

    def beat() -> None:
        while not stop.wait(every):
            say(f"{what}: still running ({time.perf_counter() - start:.0f} s)")

    thread = threading.Thread(target=beat, name="fairaudit-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
