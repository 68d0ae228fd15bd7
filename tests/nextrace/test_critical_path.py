"""The critical path on hand-built traces whose path is known (docs/trace-view.md)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from nextrace.critical_path import critical_path
from nextrace.spans import Span, Trace

MS = 1_000_000


def span(name: str, start: float, end: float, parent: str = "", phase: str = "") -> Span:
    return Span(
        trace_id="t" * 32,
        span_id=name,
        parent_id=parent,
        service="app",
        name=name,
        start_ns=int(start * MS),
        end_ns=int(end * MS),
        error=False,
        phase=phase,
        attributes={},
    )


def path(*spans: Span) -> list[tuple[str, float, float]]:
    """The critical path as (span, start ms, end ms), adjacent pieces of a span merged."""
    out: list[tuple[str, float, float]] = []
    for s in critical_path(Trace("t" * 32, list(spans))):
        if out and out[-1][0] == s.span.name and out[-1][2] == s.start_ns / MS:
            out[-1] = (s.span.name, out[-1][1], s.end_ns / MS)
        else:
            out.append((s.span.name, s.start_ns / MS, s.end_ns / MS))
    return out


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


@st.composite
def trees(draw: st.DrawFn) -> list[Span]:
    spans = [span("s0", 0, draw(st.integers(1, 1000)))]
    for index in range(1, draw(st.integers(1, 25))):
        parent = draw(st.sampled_from(spans))
        start = draw(st.integers(-50, 1100))
        end = start + draw(st.integers(0, 600))
        phase = draw(st.sampled_from(["", "", "stream"]))
        spans.append(span(f"s{index}", start, end, parent.span_id, phase))
    return spans


@given(trees())
def test_the_path_covers_the_root_exactly_and_each_piece_lies_in_its_span(
    spans: list[Span],
) -> None:
    trace = Trace("t" * 32, list(spans))
    segments = critical_path(trace)
    root = trace.root
    assert segments[0].start_ns == root.start_ns
    assert segments[-1].end_ns == root.end_ns
    assert all(a.end_ns == b.start_ns for a, b in pairwise(segments))
    assert all(s.span.start_ns <= s.start_ns < s.end_ns <= s.span.end_ns for s in segments)
    assert sum(s.duration_ns for s in segments) == root.duration_ns
