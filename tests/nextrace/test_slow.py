"""`nextrace slow`: the slowest navigations, their filters and their causes."""

from __future__ import annotations

import time

from investigate import slow
from tests.nextrace.conftest import Stored


def test_slow_lists_navigations_slowest_first_with_their_causes(traces: Stored) -> None:
    found = slow.slowest(traces.reader, slow.Filters(limit=3))
    assert [n.trace_id for n in found] == [traces.server_only, traces.queued, traces.missed]
    assert found[0].kind == "document"  # a request no browser started counts too
    assert found[1].diagnosis is not None
    assert "behind 3 prefetch requests" in found[1].diagnosis.cause
    assert found[1].build == "build-2"
    soft = slow.slowest(traces.reader, slow.Filters(kind="soft", limit=1))
    assert [n.trace_id for n in soft] == [traces.queued]
    assert slow.slowest(traces.reader, slow.Filters(route="/nowhere")) == []
    assert slow.slowest(traces.reader, slow.Filters(since_ns=time.time_ns())) == []
    text = slow.render_text(found)
    assert "parts (ms): queued 505" in text
