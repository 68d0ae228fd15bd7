"""Reads on /sql stop when their client goes away and when the collector stops (slow: a real
collector). Without that, one abandoned query would hold the reader, and a SIGTERM, for up
to the read time limit (30 s)."""

from __future__ import annotations

import signal
import threading

import httpx
import pytest

from tests.support.collector_process import start
from tests.support.processes import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

ENDLESS = {"query": "SELECT count() FROM numbers(1000000000000)", "format": "TSV"}


def test_a_read_whose_client_left_is_cancelled(tmp_path):
    port = free_port()
    process = start(tmp_path / "store", port, tmp_path / "log")
    url = f"http://127.0.0.1:{port}/sql"
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url, json=ENDLESS, timeout=1)
        # The reader is free again long before the 30 s limit would have freed it.
        answer = httpx.post(url, json={"query": "SELECT 1", "format": "TSV"}, timeout=10)
        assert answer.text == "1\n"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def test_a_stop_does_not_wait_for_a_running_read(tmp_path):
    port = free_port()
    process = start(tmp_path / "store", port, tmp_path / "log")
    base = f"http://127.0.0.1:{port}"
    threading.Thread(
        target=lambda: httpx.post(f"{base}/sql", json=ENDLESS, timeout=60), daemon=True
    ).start()
    wait_until(
        lambda: httpx.get(f"{base}/healthz", timeout=5).json()["reads_running"] > 0,
        "the read has started",
        timeout_s=30,
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(25) == 0  # under the 30 s read limit: only a cancelled read ends sooner
