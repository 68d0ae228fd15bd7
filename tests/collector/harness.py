"""Helpers shared by the collector's tests: a small disk of its own, the write-ahead log's
records as they lie in a segment, and one ``/healthz`` request."""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HEADER = struct.Struct("<IIQB")  # the record header of collector/wal.py


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


def records_at(segment: Path) -> list[tuple[int, int, int]]:
    """(id, offset, size) of each record of a segment whose records are whole."""
    data, offset, found = segment.read_bytes(), 0, []
    while offset < len(data):
        length, _, record_id, _ = HEADER.unpack_from(data, offset)
        found.append((record_id, offset, HEADER.size + length))
        offset += HEADER.size + length
    return found


def flip(segment: Path, offset: int) -> None:
    """Flip every bit of the byte at ``offset`` of ``segment``."""
    data = bytearray(segment.read_bytes())
    data[offset] ^= 0xFF
    segment.write_bytes(bytes(data))


def health(port: int, token: str | None = None) -> httpx.Response:
    """The answer of the collector on ``port`` to ``/healthz`` (with ``token``, if it has
    one). The timeout is generous: a test asks whether it answers and what, never how fast."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"http://127.0.0.1:{port}/healthz", headers=headers, timeout=30)
