"""Processes a test starts: the ``nextrace`` command line, a collector in a working folder,
and loopback ports that no other test worker picks."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.waiting import wait_until


def nextrace(
    *args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nextrace.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


_PORTS_PER_WORKER = 2000
_FIRST_PORT = 20000  # below Linux's ephemeral range (32768 on): no connection takes them
_next_port = itertools.count()


def free_port() -> int:
    """A loopback port free now, from this test worker's own range: workers running in
    parallel (``pytest -n``) never hand out the same port, as two ``bind(0)`` could."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = _FIRST_PORT + int(worker or 0) % 6 * _PORTS_PER_WORKER
    for _ in range(_PORTS_PER_WORKER):
        port = first + next(_next_port) % _PORTS_PER_WORKER
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise AssertionError(f"no free port in {first} to {first + _PORTS_PER_WORKER - 1}")


def start_collector(cwd: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "nextrace.cli", "collect", "--port", str(port), *extra],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"collector exited: {process.communicate()[1]}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, "the collector answers /healthz", timeout_s=60)
    except AssertionError:
        process.kill()
        raise
    return process
