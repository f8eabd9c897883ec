"""How many intra-op threads torch should use: the CPUs this process may really run on.

torch sizes its thread pool from the machine's cores, not from what the process is allowed:
in a container limited to 2 CPUs on a 64-core host it starts 64 threads that fight over 2
CPUs.  Its threads also spin at each parallel region's barrier, so when other processes
already keep the CPUs busy a team of threads mostly waits for its descheduled members (under
load on 2 shared cores one fit took 68 s with the default pool and 4.5 s with one thread).

:func:`choose_threads` takes the smallest of: the CPU affinity mask, the cgroup CPU quota
(v2 ``cpu.max``; v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), and the CPUs left idle
by the 1-minute load average (the machine's CPUs minus its load, at least 1).
``FAIRAUDIT_NUM_THREADS`` overrides it.  :func:`configure_torch_threads` applies the choice
once per process (at the start of an audit) and returns a record for the run's manifest.

torch is imported only inside :func:`configure_torch_threads`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

#: Environment variable that sets the thread count outright (a positive integer).
ENV_VAR = "FAIRAUDIT_NUM_THREADS"
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count chosen and the evidence for it."""

    threads: int
    #: ``"override"`` (``FAIRAUDIT_NUM_THREADS``), ``"OMP_NUM_THREADS"``, ``"quota"``,
    #: ``"affinity"``, ``"load"`` or ``"cpu_count"``: which limit decided.
    reason: str
    #: CPUs in the affinity mask (``None`` where the OS does not tell).
    affinity: int | None
    #: CPU quota of the cgroup in CPUs (e.g. 1.5), ``None`` when unlimited or unknown.
    quota: float | None
    #: The override's raw value, when one was set.
    override: str | None = None
    #: The 1-minute load average seen (``None`` where the OS does not tell).
    load: float | None = None
    #: torch's thread count before :func:`configure_torch_threads` changed it.
    torch_default: int | None = None

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready fields (for ``manifest.json``)."""
        return asdict(self)

    def describe(self) -> str:
        """One line, e.g. ``2 torch threads (affinity 2 CPUs, no cgroup quota)``."""
        quota = "no cgroup quota" if self.quota is None else f"cgroup quota {self.quota:g} CPUs"
        affinity = "affinity unknown" if self.affinity is None else f"affinity {self.affinity} CPUs"
        load = "" if self.load is None else f", load average {self.load:.1f}"
        why = {"override": f"{ENV_VAR}={self.override}",
               "OMP_NUM_THREADS": f"OMP_NUM_THREADS={self.override}"}.get(self.reason, f"by {self.reason}")
        return f"{self.threads} torch threads ({why}; {affinity}, {quota}{load})"


def affinity_cpus(getaffinity: Callable[[int], set[int]] | None = None) -> int | None:
    """CPUs this process may be scheduled on (``None`` where ``sched_getaffinity`` is missing)."""
    getaffinity = getaffinity or getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return None
    try:
        return len(getaffinity(0)) or None
    except OSError:
        return None


def load_average(getloadavg: Callable[[], tuple[float, float, float]] | None = None) -> float | None:
    """The 1-minute load average (runnable and running tasks), ``None`` where unavailable."""
    getloadavg = getloadavg or getattr(os, "getloadavg", None)
    if getloadavg is None:
        return None
    try:
        return float(getloadavg()[0])
    except OSError:
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_paths(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """This process's v2 cgroup path and v1 ``cpu`` controller path, from ``/proc/self/cgroup``."""
    text = _read(proc_cgroup)
    v2 = v1 = None
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _ancestors(base: Path, cgroup_path: str) -> list[Path]:
    """``base/<cgroup_path>`` and each parent up to ``base`` (limits nest: the tightest wins)."""
    parts = [p for p in cgroup_path.strip("/").split("/") if p and p != ".."]
    return [base.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]


def _v2_quota(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if not text:
        return None
    fields = text.split()
    if fields[0] == "max":
        return None
    try:
        quota, period = float(fields[0]), float(fields[1]) if len(fields) > 1 else 100000.0
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(directory: Path) -> float | None:
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    try:
        q, p = float(quota or "-1"), float(period or "0")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (the tightest along its path), or ``None``.

    cgroup v2 (``root/cgroup.controllers`` exists): ``cpu.max`` ("max 100000" = unlimited).
    cgroup v1: ``cpu.cfs_quota_us / cpu.cfs_period_us`` under ``root/cpu`` or ``root/cpu,cpuacct``
    (a quota of -1 = unlimited).  In a container the paths are relative to its own namespace,
    so the container's limit sits at the root.
    """
    v2_path, v1_path = _cgroup_paths(proc_cgroup)
    found: list[float] = []
    if (root / "cgroup.controllers").is_file():
        for directory in _ancestors(root, v2_path or "/"):
            q = _v2_quota(directory)
            if q is not None:
                found.append(q)
    else:
        for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
            base = root / name
            if not base.is_dir():
                continue
            for directory in _ancestors(base, v1_path or "/"):
                q = _v1_quota(directory)
                if q is not None:
                    found.append(q)
            break
    return min(found) if found else None


def _positive_int(value: str | None) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def choose_threads(
    env: Mapping[str, str] | None = None,
    *,
    affinity: int | None = None,
    quota: float | None = None,
    cpu_count: int | None = None,
    load: float | None = None,
) -> ThreadChoice:
    """Threads for torch: ``FAIRAUDIT_NUM_THREADS`` if set, else an explicit ``OMP_NUM_THREADS``,
    else ``min(affinity, floor(quota))``, at least 1.

    A fractional quota rounds down: 1.5 CPUs of quota run one thread at full speed, while two
    threads would be throttled for part of every period.  Without affinity and quota the CPU
    count itself is the limit.  ``load`` (the 1-minute load average) is recorded, not used: the
    thread count changes the order of floating-point sums in training, so a choice that followed
    what else the machine was running would make an audit's numbers depend on it.  On a shared
    machine, set ``FAIRAUDIT_NUM_THREADS`` (1 is often fastest when other jobs keep the CPUs busy).

    Raises
    ------
    ValueError
        When ``FAIRAUDIT_NUM_THREADS`` is set but not a positive integer.
    """
    env = os.environ if env is None else env
    raw = env.get(ENV_VAR)
    if raw is not None and raw.strip():
        n = _positive_int(raw)
        if n is None:
            raise ValueError(f"{ENV_VAR} must be a positive integer, got {raw!r}")
        return ThreadChoice(n, "override", affinity, quota, override=raw.strip(), load=load)
    omp = _positive_int(env.get("OMP_NUM_THREADS"))
    if omp is not None:
        return ThreadChoice(omp, "OMP_NUM_THREADS", affinity, quota, override=str(omp), load=load)
    cpus = max(1, cpu_count or os.cpu_count() or 1)
    limits: list[tuple[int, str]] = []
    if affinity is not None:
        limits.append((affinity, "affinity"))
    if quota is not None:
        limits.append((max(1, math.floor(quota)), "quota"))
    if not limits:
        limits.append((cpus, "cpu_count"))
    threads, reason = min(limits, key=lambda item: item[0])  # ties keep the earlier, structural limit
    return ThreadChoice(threads, reason, affinity, quota, load=load)


def detect_threads(
    env: Mapping[str, str] | None = None,
    *,
    getaffinity: Callable[[int], set[int]] | None = None,
    cgroup_root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_CGROUP,
    getloadavg: Callable[[], tuple[float, float, float]] | None = None,
) -> ThreadChoice:
    """:func:`choose_threads` from this process's affinity mask, cgroup quota and load."""
    return choose_threads(env, affinity=affinity_cpus(getaffinity), quota=cgroup_cpu_quota(cgroup_root, proc_cgroup),
                          load=load_average(getloadavg))


def configure_torch_threads(
    env: Mapping[str, str] | None = None,
    *,
    getaffinity: Callable[[int], set[int]] | None = None,
    cgroup_root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_CGROUP,
    getloadavg: Callable[[], tuple[float, float, float]] | None = None,
) -> ThreadChoice:
    """Set torch's intra-op thread count (call once, when an audit starts) and return why.

    Inter-op threads are left alone: torch allows setting them only before any parallel work.
    """
    import dataclasses

    import torch

    choice = detect_threads(env, getaffinity=getaffinity, cgroup_root=cgroup_root, proc_cgroup=proc_cgroup,
                            getloadavg=getloadavg)
    before = torch.get_num_threads()
    if before != choice.threads:
        torch.set_num_threads(choice.threads)
    return dataclasses.replace(choice, torch_default=before)
