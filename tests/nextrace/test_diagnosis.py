"""Causes and parts of hand-built traces, read off their critical paths: stored through a real
collector, and the span trees real Next.js apps make."""

from __future__ import annotations

from dataclasses import replace

import pytest

from investigate import waterfall
from investigate.diagnosis import MS, diagnose
from investigate.spans import CacheOutcome, Span, Trace, load_trace
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


# Hand-built Next.js span trees (the shapes of tests/nextrace/test_critical_path.py), as the
# store gives them back: phases from next.span_type, the data cache's outcome from the
# collector's rows.
def next_span(
    name: str,
    start: float,
    end: float,
    parent: str = "",
    phase: str = "",
    *,
    cache: tuple[str, str] | None = None,
    kind: str = "Internal",
    attributes: dict[str, str] | None = None,
) -> Span:
    return Span(
        trace_id="t" * 32,
        span_id=name,
        parent_id=parent,
        service="shop",
        name=name,
        start_ns=int(start * MS),
        end_ns=int(end * MS),
        error=False,
        phase=phase,
        attributes=attributes or {},
        cache=CacheOutcome("data", cache[0], cache[1], "", "") if cache else None,
        kind=kind,
    )


FETCH = "fetch GET http://127.0.0.1:8081/api/product/2"


def next16_request(parent: str = "", offset: float = 0, miss_ms: float = 298) -> list[Span]:
    """Next.js 16 behind a proxy: the proxy's pass hands the request over after 3 ms; the
    inner request renders, and its fetch misses the data cache and waits on the upstream."""
    o, end = offset, offset + 30 + miss_ms
    return [
        next_span(
            "RSC GET",
            o,
            o + 3,
            parent,
            "request",
            kind="Server",
            attributes={"next.bubble": "true"},
        ),
        next_span("middleware GET", o + 2, o + 2.5, "RSC GET", "middleware"),
        next_span(
            "RSC GET /products/[id]",
            o + 4,
            end,
            "RSC GET",
            "request",
            kind="Server",
            attributes={"next.route": "/products/[id]"},
        ),
        next_span(
            "render route (app) /products/[id]", o + 6, o + 15, "RSC GET /products/[id]", "render"
        ),
        next_span(
            FETCH,
            o + 10,
            o + 12 + miss_ms,
            "render route (app) /products/[id]",
            "fetch",
            cache=("miss", "cold"),
            kind="Client",
        ),
        next_span("fetch GET call", o + 12, o + 12 + miss_ms, FETCH, kind="Client"),
        next_span(
            "start response", o + 11, o + 11.1, "render route (app) /products/[id]", "stream"
        ),
    ]


def test_a_proxied_streaming_request_names_its_blocking_miss_and_upstream_time() -> None:
    trace = Trace("t" * 32, next16_request())
    diagnosis = diagnose(trace)
    assert trace.root.name == "RSC GET /products/[id]"
    assert diagnosis.cause == f"{FETCH} 298 ms (data-cache miss: cold)"
    assert diagnosis.parts["fetch"] == 298 * MS  # the upstream call's time
    assert diagnosis.parts["cache"] == 2 * MS  # the fetch's own time before the call left
    assert sum(diagnosis.parts.values()) == trace.duration_ns == 328 * MS
    uncovered = {s.uncovered for s in diagnosis.path if s.segment.gap}
    assert uncovered == {"no span: the middleware's hand-off to the request"}


def test_with_the_browser_client_the_navigation_names_the_miss_not_other() -> None:
    # @nextrace/next/client: the navigation span, its RSC request span (no phase), and the
    # server's spans under that request through its traceparent.
    browser = [
        next_span("navigation /products/[id]", 0, 340, phase="navigation"),
        next_span("GET /products/[id]", 2, 336, "navigation /products/[id]", kind="Client"),
    ]
    trace = Trace("t" * 32, [*browser, *next16_request("GET /products/[id]", offset=4)])
    diagnosis = diagnose(trace)
    assert diagnosis.cause == f"{FETCH} 298 ms (data-cache miss: cold)"
    assert "other" not in diagnosis.parts
    # The browser's navigation and request spans, before the server's first span.
    assert diagnosis.parts["queued"] == 4 * MS
    assert sum(diagnosis.parts.values()) == trace.duration_ns == 340 * MS


def test_a_miss_that_did_not_cost_most_is_still_named() -> None:
    spans = next16_request(miss_ms=30)
    spans[3] = next_span(
        "render route (app) /products/[id]", 6, 350, "RSC GET /products/[id]", "render"
    )
    spans[2] = replace(spans[2], end_ns=360 * MS)
    diagnosis = diagnose(Trace("t" * 32, spans))
    assert (
        diagnosis.cause
        == f"render {diagnosis.parts['render'] / MS:.0f} ms; {FETCH} 30 ms (data-cache miss: cold)"
    )


def test_time_a_child_covers_is_never_outside_the_traced_phases() -> None:
    # The old trace view read Next.js 16's 3 ms proxy pass as the navigation, and the 298 ms
    # under the inner request span as "in the server outside its traced phases".
    diagnosis = diagnose(Trace("t" * 32, next16_request()))
    assert sum(diagnosis.parts.values()) == 328 * MS
    server = [s for s in diagnosis.path if s.part == "server"]
    assert sum(s.segment.duration_ns for s in server) < 10 * MS
    assert all(s.uncovered for s in server)  # each says which time no child covered
