"""A CDN delivery sent again after the collector restarted stores nothing twice, against a real
``nextrace collect`` process with its default write-ahead log (slow): killed with -9 right after
it acknowledged the delivery (the lines may be in its log only), or stopped cleanly (they are
in the store). The deliveries are the ones written from the vendors' documentation alone
(tests/data/cdn/vendor-docs)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.collector_process import health, start, stop, stored
from tests.support.processes import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

DOCS = Path(__file__).parents[1] / "data" / "cdn" / "vendor-docs"
FILES: dict[str, dict[str, Any]] = json.loads((DOCS / "truth.json").read_text())["files"]
SECRET = json.loads((DOCS / "truth.json").read_text())["vercel_delivery"]["signature"][
    "test_secret"
]
TOKEN = "logpush-token-0123456789"
DELIVERIES = ("vercel-one-request-many-entries.json", "cloudflare-formats-unixnano.ndjson")
# The vercel delivery also logs Vercel's own background revalidation of its STALE request:
# a line of its own (recorded as what it is).
LINES = sum(FILES[name]["requests"] for name in DELIVERIES) + 1
LOOKUPS = sum(FILES[name]["cdn_lookups"] for name in DELIVERIES)
ROWS = (  # what every derived table holds of the CDN's lines
    "SELECT (SELECT count() FROM otel_traces WHERE ScopeName = 'nextrace.cdn' AND SpanName = "
    "'cdn'), (SELECT sum(Sign) FROM cache_events WHERE Layer = 'cdn' AND Result != 'bypass'), "
    "(SELECT sum(Lookups) FROM cache_events_1m WHERE Layer = 'cdn' AND Result != 'bypass')"
)


def deliver(port: int, name: str) -> int:
    """POST the file ``name`` as its vendor does; the answer's status."""
    body = (DOCS / name).read_bytes()
    if FILES[name]["vendor"] == "vercel":
        url, headers = "/v1/cdn/vercel", {"x-vercel-signature": FILES[name]["x-vercel-signature"]}
    else:
        url, headers = "/v1/cdn/cloudflare?service=shop", {"Authorization": f"Bearer {TOKEN}"}
    answer = httpx.post(f"http://127.0.0.1:{port}{url}", content=body, headers=headers, timeout=60)
    return answer.status_code


@pytest.mark.parametrize("restart", ["kill -9", "clean stop"])
def test_a_redelivery_after_a_restart_stores_nothing_twice(tmp_path, monkeypatch, restart):
    monkeypatch.setenv("NEXTRACE_VERCEL_DRAIN_SECRET", SECRET)
    monkeypatch.setenv("NEXTRACE_CLOUDFLARE_LOGPUSH_TOKEN", TOKEN)
    store, log, port = tmp_path / "store", tmp_path / "collector.log", free_port()
    process = start(store, port, log)
    for name in DELIVERIES:
        assert deliver(port, name) == 200
    if restart == "kill -9":
        process.send_signal(signal.SIGKILL)  # acknowledged: in the log, maybe not in the store
        process.wait(60)
    else:
        stop(process)
    process = start(store, port, log)
    try:
        for name in DELIVERIES:
            # The vendor sends it again, and again while it is answered 503 (the collector
            # replays its log first).
            wait_until(lambda name=name: deliver(port, name) == 200, f"{name} is taken again")
        # Once the first delivery's lines are stored (replayed, after a kill), the counts say
        # whether the second stored anything.
        wait_until(
            lambda: stored(port, ROWS) == [[str(LOOKUPS + 1), str(LOOKUPS), str(LOOKUPS)]],
            f"the {LOOKUPS} lookups (and a dynamic request's bypass) are stored once",
            detail=lambda: f"stored: {stored(port, ROWS)}",
        )
        assert health(port).json()["cdn_lines_redelivered"] == LINES
    finally:
        stop(process)
