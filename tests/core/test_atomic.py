"""Atomic writes leave either the old file or the new one, never half of either."""

from __future__ import annotations

import errno
import os

import pytest

from fairaudit import atomic


def test_write_replaces_whole_file(tmp_path):
    target = tmp_path / "result.json"
    atomic.write_json(target, {"a": 1})
    atomic.write_json(target, {"a": 2})
    assert target.read_text().strip().endswith("}")
    assert '"a": 2' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_failure_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    atomic.write_text(target, "old report")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(atomic.WriteError, match="No space left on device"):
        atomic.write_text(target, "new report that does not fit")
    assert target.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_exception_in_writer_discards_temp(tmp_path):
    target = tmp_path / "x.txt"
    with pytest.raises(RuntimeError), atomic.atomic_open(target) as fh:
        fh.write("partial")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = atomic.write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)
