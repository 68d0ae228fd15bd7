"""The critical path on hand-built traces whose path is known (docs/trace-view.md), the shapes
real Next.js apps make among them: children that outlive their parent, a request span that
goes on after the proxy handed it over, and Next.js 15's middleware pass beside its request."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from investigate.critical_path import critical_path
from investigate.spans import CacheOutcome, Span, Trace

MS = 1_000_000


def span(
    name: str,
    start: float,
    end: float,
    parent: str = "",
    phase: str = "",
    *,
    trace_id: str = "t" * 32,
    cache: str = "",
    **attributes: str,
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=name,
        parent_id=parent,
        service="app",
        name=name,
        start_ns=int(start * MS),
        end_ns=int(end * MS),
        error=False,
        phase=phase,
        attributes=attributes,
        cache=CacheOutcome("data", cache, "", "", "") if cache else None,
    )


def path(*spans: Span) -> list[tuple[str, float, float]]:
    """The critical path as (span, start ms, end ms), adjacent pieces of a span merged; time no
    span covers is ``-`` (its segments are gaps)."""
    out: list[tuple[str, float, float]] = []
    for s in critical_path(Trace("t" * 32, list(spans))):
        name = "-" if s.gap else s.span.name
        if out and out[-1][0] == name and out[-1][2] == s.start_ns / MS:
            out[-1] = (name, out[-1][1], s.end_ns / MS)
        else:
            out.append((name, s.start_ns / MS, s.end_ns / MS))
    return out


def request(name: str, start: float, end: float, parent: str = "", **attributes: str) -> Span:
    """A Next.js request span (``BaseServer.handleRequest``) of ``GET /products/1``."""
    said = {"http.method": "GET", "http.target": "/products/1", "next.rsc": "false"}
    return span(name, start, end, parent, "request", **{**said, **attributes})


def test_back_to_back_children_are_both_on_the_path() -> None:
    # Jaeger skips a child that ends exactly when the next starts (jaegertracing/jaeger#9173).
    assert path(span("p", 0, 100), span("a", 0, 50, "p"), span("b", 50, 100, "p")) == [
        ("a", 0, 50),
        ("b", 50, 100),
    ]


def test_an_overlapping_sibling_keeps_the_time_it_was_running() -> None:
    # Jaeger gives 0-50 ms to the parent: it looks only for a child that finished before b
    # started (jaegertracing/jaeger-ui#2371).
    assert path(span("p", 0, 150), span("a", 0, 100, "p"), span("b", 50, 150, "p")) == [
        ("a", 0, 50),
        ("b", 50, 150),
    ]


def test_a_shorter_parallel_sibling_is_not_on_the_path() -> None:
    # The trace of jaegertracing/jaeger-ui#2371: foo3 follows foo1; foo2 ran beside foo1.
    spans = (
        span("main", 0, 150),
        span("foo1", 0, 100, "main"),
        span("foo2", 0, 60, "main"),
        span("foo3", 100, 150, "main"),
    )
    assert path(*spans) == [("foo1", 0, 100), ("foo3", 100, 150)]


def test_the_sibling_that_finished_is_taken_over_one_still_running() -> None:
    # recommendations waited for products; reviews ran beside both.
    spans = (
        span("render", 0, 300),
        span("products", 0, 80, "render"),
        span("reviews", 5, 200, "render"),
        span("recommendations", 81, 300, "render"),
    )
    assert path(*spans) == [
        ("products", 0, 80),
        ("render", 80, 81),
        ("recommendations", 81, 300),
    ]


def test_late_children_are_clipped_to_their_parent() -> None:
    assert path(span("p", 0, 100), span("late", 20, 130, "p")) == [
        ("p", 0, 20),
        ("late", 20, 100),
    ]
    assert path(span("p", 0, 100), span("after", 110, 200, "p")) == [("p", 0, 100)]


def test_a_child_starting_before_its_parent_is_clipped_to_it() -> None:
    assert path(span("p", 10, 100), span("skewed", 0, 50, "p")) == [
        ("skewed", 10, 50),
        ("p", 50, 100),
    ]


def test_nested_spans_give_each_level_its_own_time() -> None:
    spans = (
        span("p", 0, 100),
        span("r", 10, 90, "p"),
        span("f1", 20, 40, "r"),
        span("f2", 40, 80, "r"),
    )
    assert path(*spans) == [
        ("p", 0, 10),
        ("r", 10, 20),
        ("f1", 20, 40),
        ("f2", 40, 80),
        ("r", 80, 90),
        ("p", 90, 100),
    ]


def test_the_stream_covers_only_what_the_render_does_not() -> None:
    spans = (
        span("request", 0, 100, phase="request"),
        span("render", 5, 90, "request", "render"),
        span("fetch", 10, 85, "render", "fetch"),
        span("stream", 6, 95, "request", "stream"),
    )
    assert path(*spans) == [
        ("request", 0, 5),
        ("render", 5, 10),
        ("fetch", 10, 85),
        ("render", 85, 90),
        ("stream", 90, 95),
        ("request", 95, 100),
    ]


def test_a_fetch_that_outlives_its_render_is_followed_to_its_end() -> None:
    # Next.js 15, a page that streams: render route (app) ends when the shell is out; its
    # fetch goes on, and the rest of the page streams when the upstream answers.
    spans = (
        request("GET /products/[id]", 0, 300),
        span("render", 8, 40, "GET /products/[id]", "render"),
        span("fetch", 18, 268, "render", "fetch", cache="miss"),
        span("call", 44, 269, "fetch"),
        span("start response", 59, 59.1, "render", "stream"),
    )
    assert path(*spans) == [
        ("GET /products/[id]", 0, 8),
        ("render", 8, 18),
        ("fetch", 18, 44),
        ("call", 44, 269),
        ("GET /products/[id]", 269, 300),
    ]
    # The old walk clipped the fetch to the render's end (40 ms) and gave the next 260 ms
    # to the request span's own time.


def test_a_request_span_that_goes_on_after_the_proxy_handed_it_over_is_followed() -> None:
    # Next.js 16 behind a proxy: the outer request span (the proxy's pass) ends when it hands
    # the request over; the inner one, its child, starts after that and holds the render.
    spans = (
        request("GET", 0, 6.8, **{"next.bubble": "true"}),
        span("middleware", 6, 6.4, "GET", "middleware"),
        request("GET /products/[id]", 8, 172.5, "GET", **{"next.route": "/products/[id]"}),
        span("fetch", 23, 168, "GET /products/[id]", "fetch", cache="miss"),
    )
    assert path(*spans) == [
        ("GET", 0, 6),
        ("middleware", 6, 6.4),
        ("GET", 6.4, 6.8),
        ("-", 6.8, 8),  # the hand-off: no span ran
        ("GET /products/[id]", 8, 23),
        ("fetch", 23, 168),
        ("GET /products/[id]", 168, 172.5),
    ]
    trace = Trace("t" * 32, list(spans))
    assert trace.root.synthetic
    assert (trace.root.name, trace.duration_ns) == ("GET /products/[id]", int(172.5 * MS))


def test_next15_middleware_pass_beside_its_request_is_joined_to_it() -> None:
    # Next.js 15: the middleware's pass (next.bubble, no request in it) is a root of its own
    # beside the request (the same trace when the request carried a traceparent; loaded from
    # its own trace otherwise, as tests/nextrace/test_real_shapes.py shows).
    spans = (
        request("GET /products/1", 0, 2.9, "remote", **{"next.bubble": "true"}),
        span("middleware", 2, 2.5, "GET /products/1", "middleware"),
        request("GET /products/[id]", 4, 68.5, "remote", **{"next.route": "/products/[id]"}),
        span("render", 9, 36.8, "GET /products/[id]", "render"),
    )
    assert path(*spans) == [
        ("GET /products/1", 0, 2),
        ("middleware", 2, 2.5),
        ("GET /products/1", 2.5, 2.9),
        ("-", 2.9, 4),
        ("GET /products/[id]", 4, 9),
        ("render", 9, 36.8),
        ("GET /products/[id]", 36.8, 68.5),
    ]
    trace = Trace("t" * 32, list(spans))
    assert [s.name for s in trace.top] == ["GET /products/1", "GET /products/[id]"]
    assert trace.root.synthetic
    assert trace.duration_ns == int(68.5 * MS)
    # A pass of another target, or one that ended long before, is not this request's.
    bubble = {"next.bubble": "true"}
    other = request("GET /products/2", 0, 2.9, "remote", **bubble, **{"http.target": "/x"})
    earlier = request("GET /products/1", -2000, -1997, "remote", **bubble)
    for unrelated in (other, earlier):
        assert Trace("t" * 32, [unrelated, spans[2]]).top == [spans[2]]


def test_the_refresh_of_a_stale_entry_is_not_waited_for() -> None:
    # A fetch the data cache answered (a stale entry, served at once) refreshes it in the
    # background: the refresh outlives the fetch and the request, and is not on the path.
    spans = (
        request("GET /products/[id]", 0, 100),
        span("render", 5, 40, "GET /products/[id]", "render"),
        span("fetch", 10, 11, "render", "fetch", cache="stale"),
        span("refresh", 12, 300, "fetch"),
    )
    assert path(*spans) == [
        ("GET /products/[id]", 0, 5),
        ("render", 5, 10),
        ("fetch", 10, 11),
        ("render", 11, 40),
        ("GET /products/[id]", 40, 100),
    ]


@st.composite
def trees(draw: st.DrawFn) -> list[Span]:
    """Random traces: a root (a request, or not), children anywhere in time (before their
    parent, after it, outliving it), waiting spans, fetches answered from the cache, and
    sometimes a Next.js 15 middleware pass beside the request."""
    root_phase = draw(st.sampled_from(["", "request"]))
    spans = [request("s0", 0, draw(st.integers(1, 1000)))]
    if not root_phase:
        spans = [span("s0", 0, spans[0].end_ns / MS)]
    if draw(st.booleans()):
        end = draw(st.integers(-100, 0))
        spans.append(request("pass", end - 5, end, **{"next.bubble": "true"}))
    for index in range(1, draw(st.integers(1, 25))):
        parent = draw(st.sampled_from([s for s in spans if s.span_id != "pass"]))
        start = draw(st.integers(-50, 1100))
        end = start + draw(st.integers(0, 600))
        phase = draw(st.sampled_from(["", "", "stream", "request", "fetch"]))
        cache = draw(st.sampled_from(["", "hit", "miss"])) if phase == "fetch" else ""
        spans.append(span(f"s{index}", start, end, parent.span_id, phase, cache=cache))
    return spans


@given(trees())
def test_the_path_covers_the_navigation_exactly_and_each_piece_lies_in_its_span(
    spans: list[Span],
) -> None:
    trace = Trace("t" * 32, list(spans))
    segments = critical_path(trace)
    root = trace.root
    assert segments[0].start_ns == root.start_ns
    assert segments[-1].end_ns == root.end_ns
    assert all(a.end_ns == b.start_ns for a, b in pairwise(segments))
    assert sum(s.duration_ns for s in segments) == trace.duration_ns
    for s in segments:
        assert s.start_ns < s.end_ns
        if s.gap:  # no span ran: outside the span it is counted under
            assert s.span.synthetic or not (
                s.span.start_ns < s.end_ns and s.start_ns < s.span.end_ns
            )
        else:
            assert s.span.start_ns <= s.start_ns < s.end_ns <= s.span.end_ns
