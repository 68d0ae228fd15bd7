"""Causes and parts of hand-built traces, read off their critical paths."""

from __future__ import annotations

import pytest

from nextrace import waterfall
from nextrace.diagnosis import MS, diagnose
from nextrace.spans import load_trace
from tests.nextrace.conftest import Stored


def test_a_navigation_queued_behind_prefetches_says_so(traces: Stored) -> None:
    trace = load_trace(traces.reader, traces.queued)
    diagnosis = diagnose(trace, traces.reader)
    assert diagnosis.cause.startswith(
        "queued 505 ms before the server saw the request, behind 3 prefetch requests"
    )
    assert diagnosis.parts["queued"] == 505 * MS
    assert sum(diagnosis.parts.values()) == trace.root.duration_ns  # the parts add up
    text = waterfall.render_text(diagnosis)
    assert "waiting before the server saw the request" in text
    assert "in the browser after the last byte" in text
    # The stream waits for the render: only the render's end to the last chunk is its.
    streamed = [s for s in diagnosis.path if s.segment.span.name == "stream"]
    assert sum(s.segment.duration_ns for s in streamed) == 2 * MS


def test_a_data_miss_after_a_deploy_names_the_fetch_and_the_deploy(traces: Stored) -> None:
    trace = load_trace(traces.reader, traces.missed)
    diagnosis = diagnose(trace, traces.reader)
    assert diagnosis.cause == (
        "fetch GET reviews/{id} 400 ms (data-cache miss: deploy, 2.5 s after deploy build-2)"
    )
    view = waterfall.as_json(diagnosis)
    lookup = next(s for s in view["spans"] if s["name"] == "data cache lookup")
    assert lookup["cache"]["reason"] == "deploy"
    fetch = next(s for s in view["spans"] if s["phase"] == "fetch")
    assert fetch["critical_path_ms"] == pytest.approx(400, abs=0.02)
    assert view["duration_ms"] == pytest.approx(sum(view["parts_ms"].values()))
