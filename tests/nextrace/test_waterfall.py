"""The waterfall of `nextrace trace`: what it says of each span."""

from __future__ import annotations

from investigate import waterfall
from investigate.diagnosis import diagnose
from investigate.spans import load_trace
from tests.nextrace.conftest import Stored


def test_a_hit_links_the_warm_up_that_stored_its_entry(traces: Stored) -> None:
    trace = load_trace(traces.reader, traces.fast)
    lookup = next(s for s in trace.spans if s.cache is not None)
    assert lookup.linked_trace_ids == (traces.warmup,)
    text = waterfall.render_text(diagnose(trace))
    assert f"data hit, entry from warmup, → trace {traces.warmup}" in text
