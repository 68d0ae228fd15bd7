"""examples/nextjs-cache-components, built and run for real (slow): two ``next start``
instances of one build and then of the next, a Redis server for the shared handler, and
``nextrace collect``. The scenario (tests/examples/cache_components.py) reads products cold,
warm, on the other instance, after both kinds of tag revalidation and after a deploy, and
prices through the incremental cache (Redis); every lookup must be stored once, with the
outcome the upstream's log and the answer show, the cause the scenario gave it, and its
instance."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.examples.cache_components import (
    LAYERS,
    CacheComponentsApp,
    Lookups,
    drive,
    mismatches,
    next_js_disagrees,
)
from tests.support.collector_process import stored
from tests.support.processes import free_port, start_collector
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

COLUMNS = ("TraceId", "Layer", "Result", "Reason", "Instance")


LOOKUPS = (
    f"SELECT {', '.join(COLUMNS)} FROM cache_events "
    f"WHERE Layer IN ({', '.join(repr(layer) for layer in LAYERS)})"
)


def test_every_use_cache_lookup_of_the_running_app_has_its_outcome_and_cause(
    tmp_path: Path,
) -> None:
    for tool in ("node", "npm", "redis-server"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is needed to run the Cache Components example")
    app = CacheComponentsApp(tmp_path)
    port = free_port()
    collector = start_collector(tmp_path, port, "--nextjs-wait", "1")
    collector_url = f"http://127.0.0.1:{port}"
    try:
        app.build()
        sent: list[dict[str, Any]] = []

        def all_stored() -> None:
            """Until the lookups of every request sent so far are stored (before the
            instances stop: a span still in an exporter's queue would go with them)."""
            expected = sum(len(r["expect"]) for r in sent)
            wait_until(
                lambda: len(stored(port, LOOKUPS)) >= expected,
                f"the collector stores the {expected} 'use cache' lookups",
                timeout_s=60,
                detail=lambda: f"stored: {stored(port, LOOKUPS)}",
            )

        # The recorded run (tests/collector/test_use_cache.py) holds the step that waits for
        # an entry to expire; this one does not wait.
        driver = drive(app, collector_url, all_stored, sent, expiry=False)
        requests, calls = driver.recording.requests, app.upstream_calls()
        expected = sum(len(r["expect"]) for r in requests)
        rows = stored(port, LOOKUPS)
        lookups: Lookups = {(row[0], row[1]): dict(zip(COLUMNS, row, strict=True)) for row in rows}
        assert len(rows) == len(lookups) == expected  # each lookup once
        assert not mismatches(requests, calls, lookups)
        assert not next_js_disagrees(requests, lookups)  # Next.js's own word, as it ran
    finally:
        app.close()
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)
