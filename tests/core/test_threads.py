"""Thread sizing from affinity and cgroup quotas (fake cgroup trees in tmp_path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fairaudit.threads import (
    ENV_VAR,
    ThreadChoice,
    affinity_cpus,
    cgroup_cpu_quota,
    choose_threads,
    configure_torch_threads,
    detect_threads,
)


def _v2(root: Path, limits: dict[str, str], own: str) -> Path:
    """A cgroup v2 tree with ``cpu.max`` per directory; returns the fake /proc/self/cgroup."""
    (root / "cgroup.controllers").parent.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpu memory\n")
    for rel, text in limits.items():
        d = root / rel.strip("/") if rel.strip("/") else root
        d.mkdir(parents=True, exist_ok=True)
        (d / "cpu.max").write_text(text + "\n")
    proc = root.parent / "proc_cgroup"
    proc.write_text(f"0::{own}\n")
    return proc


def _v1(root: Path, controller: str, quota: int, period: int, own: str = "/") -> Path:
    d = root / controller / own.strip("/")
    d.mkdir(parents=True, exist_ok=True)
    (d / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (d / "cpu.cfs_period_us").write_text(f"{period}\n")
    proc = root.parent / "proc_cgroup"
    proc.write_text(f"12:memory:/x\n4:{controller}:{own}\n1:name=systemd:/\n")
    return proc


def test_v2_quota_is_read_and_the_tightest_ancestor_wins(tmp_path):
    root = tmp_path / "cg"
    proc = _v2(root, {"/": "max 100000", "/kube": "400000 100000", "/kube/pod": "150000 100000"}, "/kube/pod")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.5)
    proc.write_text("0::/kube\n")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(4.0)


def test_v2_unlimited_and_missing_files_mean_no_quota(tmp_path):
    root = tmp_path / "cg"
    proc = _v2(root, {"/": "max 100000"}, "/")
    assert cgroup_cpu_quota(root, proc) is None
    assert cgroup_cpu_quota(tmp_path / "nowhere", tmp_path / "no_proc") is None


def test_v1_quota_under_cpu_cpuacct(tmp_path):
    root = tmp_path / "cg"
    proc = _v1(root, "cpu,cpuacct", 200000, 100000, own="/docker/abc")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(2.0)
    (root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(root, proc) is None


def test_choice_takes_the_smaller_limit_rounding_a_quota_down():
    assert choose_threads({}, affinity=8, quota=2.5) == ThreadChoice(2, "quota", 8, 2.5)
    assert choose_threads({}, affinity=3, quota=16.0) == ThreadChoice(3, "affinity", 3, 16.0)
    assert choose_threads({}, affinity=4, quota=0.5).threads == 1  # never zero
    assert choose_threads({}, affinity=None, quota=None, cpu_count=6) == ThreadChoice(6, "cpu_count", None, None)


def test_the_load_is_recorded_but_never_changes_the_choice():
    """The thread count changes floating-point summation order; an audit's numbers must not
    depend on what else the machine runs, so only affinity, quota and overrides decide."""
    busy = choose_threads({}, affinity=2, quota=None, cpu_count=2, load=5.3)
    assert busy == ThreadChoice(2, "affinity", 2, None, load=5.3)
    assert "load average 5.3" in busy.describe()
    assert choose_threads({}, affinity=64, quota=2.0, cpu_count=64, load=40.0).reason == "quota"


def test_overrides_win_and_bad_values_are_named():
    assert choose_threads({ENV_VAR: "3", "OMP_NUM_THREADS": "5"}, affinity=2, quota=1.0) == ThreadChoice(
        3, "override", 2, 1.0, override="3")
    assert choose_threads({"OMP_NUM_THREADS": "5"}, affinity=2, quota=None).reason == "OMP_NUM_THREADS"
    with pytest.raises(ValueError, match=ENV_VAR):
        choose_threads({ENV_VAR: "many"}, affinity=2)
    with pytest.raises(ValueError, match=ENV_VAR):
        choose_threads({ENV_VAR: "0"}, affinity=2)


def test_detect_reads_affinity_and_quota_together(tmp_path):
    root = tmp_path / "cg"
    proc = _v2(root, {"/": "300000 100000"}, "/")
    choice = detect_threads({}, getaffinity=lambda pid: {0, 1, 2, 3, 4, 5}, cgroup_root=root, proc_cgroup=proc,
                            getloadavg=lambda: (0.0, 0.0, 0.0))
    assert (choice.threads, choice.reason, choice.affinity, choice.quota) == (3, "quota", 6, 3.0)
    assert "cgroup quota 3 CPUs" in choice.describe() and "affinity 6 CPUs" in choice.describe()
    busy = detect_threads({}, getaffinity=lambda pid: {0, 1}, cgroup_root=root, proc_cgroup=proc,
                          getloadavg=lambda: (1e6, 0.0, 0.0))
    assert (busy.threads, busy.reason, busy.load) == (2, "affinity", 1e6)
    assert affinity_cpus(lambda pid: {7}) == 1


def test_configure_sets_torch_and_reports_the_previous_count(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        choice = configure_torch_threads({}, getaffinity=lambda pid: {0}, cgroup_root=tmp_path / "none",
                                         proc_cgroup=tmp_path / "none", getloadavg=lambda: (0.0, 0.0, 0.0))
        assert torch.get_num_threads() == 1 == choice.threads
        assert choice.torch_default == before
        assert choice.as_dict() == {"threads": 1, "reason": "affinity", "affinity": 1, "quota": None,
                                    "override": None, "load": 0.0, "torch_default": before}
    finally:
        torch.set_num_threads(before)


def test_importing_the_module_does_not_import_torch():
    code = "import sys, fairaudit.threads; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
