"""Stored traces as span trees: trace ids, and a real Next.js app's spans with the rows the
collector derived for them."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collector.service import Collector
from contract.errors import NextraceError
from investigate import slow
from investigate.reader import StoreReader
from investigate.spans import TraceNotFound, check_trace_id, load_trace
from tests.conftest import stored
from tests.nextrace.conftest import Stored
from tests.support.captures import post_capture


def test_unknown_and_malformed_trace_ids_are_one_line_errors(traces: Stored) -> None:
    with pytest.raises(NextraceError, match="32 hexadecimal digits"):
        check_trace_id("not-a-trace")
    assert check_trace_id(traces.queued.upper()) == traces.queued
    with pytest.raises(TraceNotFound, match="no span of trace"):
        load_trace(traces.reader, "0" * 32)


def test_a_real_nextjs_trace_reads_its_phases_and_derived_cache_rows(
    captures: Path, client: TestClient, collector: Collector
) -> None:
    post_capture(client, captures / "protobuf-default")
    stored(collector, "SELECT 1")
    assert collector.store is not None
    reader = StoreReader(collector.store)
    found = slow.slowest(reader, slow.Filters(limit=100))
    assert found, "the capture's navigations are listed"
    assert {n.kind for n in found} <= {"document", "soft", "api"}
    fetched = [
        n.diagnosis
        for n in found
        if n.diagnosis and any(s.phase == "fetch" for s in n.diagnosis.trace.spans)
    ]
    assert fetched, [n.name for n in found]
    for diagnosis in fetched:
        trace = diagnosis.trace
        assert trace.root.phase == "request"
        assert trace.root.request_kind in ("document", "rsc_navigation")
        fetches = [s for s in trace.spans if s.phase == "fetch"]
        # The data cache's outcome is the collector's derived row, on the fetch span.
        assert all(f.cache is not None and f.cache.layer == "data" for f in fetches), fetches
        assert sum(diagnosis.parts.values()) == trace.root.duration_ns
