"""Training seeds of an arm's repeats (``repeats: N``), derived deterministically from the master seed.

Repeat 0 keeps the seed every arm has always had (``seed + 1000 * index``), so an audit with
``repeats: 1`` computes exactly what it computed before repeats existed.  Repeat ``k >= 1`` gets
the first 31 bits of SHA-256 over ``(seed, arm name, k)``: the same in every run and on every
machine, distinct across arms and repeats (a collision has probability about ``N^2 / 2^32``), and
independent of the arm's position, so reordering the spec's arms keeps their later repeats.
"""

from __future__ import annotations

import hashlib

#: Seeds stay below 2**31 (torch, numpy and sklearn all accept them).
SEED_BITS = 31
#: How far apart the arms' repeat-0 seeds are (the runner's historical rule).
ARM_STRIDE = 1000


def repeat_seed(seed: int, index: int, arm: str, repeat: int) -> int:
    """The training seed of repeat ``repeat`` of the arm ``arm`` at position ``index``."""
    if repeat < 0:
        raise ValueError(f"repeat must be >= 0, got {repeat}")
    if repeat == 0:
        return int(seed) + ARM_STRIDE * int(index)
    message = f"fairaudit-repeat\x00{int(seed)}\x00{arm}\x00{int(repeat)}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(message).digest()[:8], "big") >> (64 - SEED_BITS)


def repeat_seeds(seed: int, index: int, arm: str, n: int) -> list[int]:
    """The seeds of the ``n`` repeats of an arm (repeat 0 first)."""
    if n < 1:
        raise ValueError(f"an arm needs at least one repeat, got {n}")
    return [repeat_seed(seed, index, arm, k) for k in range(n)]
