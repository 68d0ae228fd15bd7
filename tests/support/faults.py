"""Faults a test injects from outside: a small disk of its own, and filling it."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def reserve(disk: Path, megabytes: int) -> None:
    """Start ``disk/filler`` with ``megabytes``, before anything else writes to ``disk``: once
    the disk is full, whoever filled it, deleting the filler gives back that much at least."""
    (disk / "filler").write_bytes(b"\0" * (megabytes << 20))


def fill(disk: Path) -> None:
    """Take every free byte of ``disk`` with ``disk/filler`` (added to what it holds). The
    disk may be full already (then even a new file cannot be made: :func:`reserve` first)."""
    chunk = b"\0" * (1 << 20)
    with contextlib.suppress(OSError), open(disk / "filler", "ab") as out:
        while True:
            out.write(chunk)
            out.flush()


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount`` syntax: ``160m``) mounted at ``where``, unmounted after;
    the test is skipped where it cannot be mounted (it needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
