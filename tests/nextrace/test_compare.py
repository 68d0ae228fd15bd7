"""`nextrace compare`: two traces aligned by path, and the typical fast peer."""

from __future__ import annotations

import pytest

from contract.errors import NextraceError
from investigate import compare
from investigate.diagnosis import MS, diagnose
from investigate.spans import load_trace
from tests.nextrace.conftest import Stored


def test_compare_aligns_by_path_and_shows_cache_differences(traces: Stored) -> None:
    slow_trace = load_trace(traces.reader, traces.missed)
    assert compare.typical_peer(traces.reader, slow_trace) != traces.missed
    fast_trace = load_trace(traces.reader, traces.fast)
    result = compare.compare(diagnose(slow_trace), diagnose(fast_trace))
    assert all(p.slow is not None and p.fast is not None for p in result.pairs)
    fetch = next(p for p in result.pairs if p.span.phase == "fetch")
    assert fetch.delta_ns == 340 * MS
    lookup = next(p for p in result.pairs if p.span.name == "data cache lookup")
    assert lookup.cache_differs
    text = compare.render_text(result)
    assert "(cache: miss (deploy) vs hit)" in text
    assert compare.as_json(result)["difference_ms"] == pytest.approx(341, abs=0.1)


def test_a_typical_peer_is_of_the_same_route_and_kind(traces: Stored) -> None:
    queued = load_trace(traces.reader, traces.queued)
    peer = load_trace(traces.reader, compare.typical_peer(traces.reader, queued))
    assert peer.root.name == queued.root.name
    assert peer.root.duration_ns < queued.root.duration_ns
    alone = load_trace(traces.reader, traces.server_only)
    with pytest.raises(NextraceError, match="pass a second trace id"):
        compare.typical_peer(traces.reader, alone)
