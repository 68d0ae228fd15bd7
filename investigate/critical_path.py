"""The critical path of a trace: which span the navigation was waiting on at every instant.

The algorithm (``docs/trace-view.md`` explains it with pictures):

1. Walk a span's time window backwards from its end, with a cursor ``t``. The root's window is
   the navigation's (``Trace.root``); a span's own window runs from its start to its *reach*:
   its end, or the reach of a child that outlives it, whichever is later.
2. Among the span's children that started before ``t``, pick the one that reached its end last
   at or before ``t`` (whatever finished last most likely let the next step start); if none
   has by ``t``, the one still running at ``t``. Ties go to the child that started first,
   which covers more. Reaches are cut at the navigation's end: a span that closes a moment
   after the response (Next.js's ``rendering page`` does) is done when the navigation is.
3. Time between that reach and ``t`` is the span's own (no child ran): a segment of its own.
4. The child's window ``[max(child start, window start), its reach, clipped]`` is walked the
   same way, and the cursor moves to the child's start.
5. When no child started before ``t``, the rest of the window is the span's own.

What this does with awkward timing:

- **Overlapping siblings** (A 0-100 ms and B 50-150 ms): B covers 50-150, and A covers
  0-50, because A was running then. Jaeger looks, after B, only for a child that *finished*
  before B started, finds none, and calls 0-50 the parent's own time (its critical path
  mis-attributes such siblings, jaegertracing/jaeger-ui#2371); a sibling that ends exactly
  when the next starts is skipped the same way (jaegertracing/jaeger#9173). Here it counts.
- **A parallel sibling still running** when the next step starts (fetch B waits for fetch A
  while fetch C runs beside both): A, which finished, is taken over C, which did not.
- **Children that outlive their parent**: Next.js ends ``render route (app)`` when the page's
  shell is rendered, while the fetch it started goes on and the rest of the page streams when
  it answers; behind a proxy, Next.js 16's request span is a child of the proxy's pass that
  starts after the pass ended. Such a child is followed to its end: its parent *reaches* as
  far as it does. Time in a parent's reach that neither it nor a child covers (the hand-off
  from the proxy to the request) is a *gap* segment: no span was running.
- **An HTTP call is done when its answer came**, when its client span says so
  (``@vercel/otel``'s ``http.response_time``): the span stays open while the page reads the
  body, tens of milliseconds on a busy server, and nothing waits for that.
- **Background work** is not waited for: a fetch answered from the data cache (a hit, or a
  stale entry served at once) does not reach as far as the refresh under it. Whatever ends
  after the navigation's window is clipped to it; a child that starts after its parent's reach
  is not on its path at all. A child that starts before its parent (clock skew) is clipped to
  the parent's start.
- **Waiting spans**: a span that only waits for its siblings' work (the reference server's
  response stream, which lasts as long as the render that feeds it; in Next.js's verbose mode,
  the ``NextServer.getRequestHandler`` span beside the request span it hands over to, which
  holds no request itself) would otherwise take the work's place, because it ends a moment
  later. Such spans (:func:`waits`) are left out of step 2 and cover only time no other child
  covers: the time between the render's end and the last chunk.

The segments returned cover the root's window exactly, in time order, so their durations add
up to the navigation's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from collector.nextjs.mapping import END_ROUNDING_NS, RESPONSE_TIME
from contract import semconv
from investigate.spans import Span, Trace

WAITING_PHASES = frozenset({"stream"})
CACHED = frozenset({"hit", "stale"})  # a fetch answered from its cache: it waited for no call


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the critical path: ``span`` is what the trace was waiting on. ``own`` is
    true when that was the span itself, with none of its children running; ``gap`` when no
    span was running at all (the stretch lies in ``span``'s reach, outside its own window, or
    in a synthetic root's)."""

    span: Span
    start_ns: int
    end_ns: int
    own: bool
    gap: bool = False

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


def waits(span: Span) -> bool:
    """Whether ``span`` only waits for its siblings' work (see the module's docstring)."""
    return span.phase in WAITING_PHASES


def wraps(trace: Trace, span: Span) -> bool:
    """Whether ``span`` is Next.js's request handling around a request span it does not hold
    (verbose mode's ``NextServer.getRequestHandler`` beside the request)."""
    return span.phase == "server" and not trace.requests_under(span)


def served_from_cache(trace: Trace, span: Span) -> bool:
    """Whether ``span`` is a fetch its cache answered, so that nothing under it was waited for
    (a stale entry's refresh runs in the background)."""
    if span.phase != "fetch":
        return False
    lookups = [span, *(c for c in trace.children_of(span) if c.phase == "cache")]
    return any(s.cache is not None and s.cache.result in CACHED for s in lookups)


def is_refresh(trace: Trace, span: Span) -> bool:
    """Whether ``span`` is a stale entry's refresh itself: a stale fetch with no cache status
    from Next.js and no call that outlived it. Next.js 16 cuts such a fetch off unanswered when
    the request ends (an ``unstable_cache`` entry's refresh), where Next.js 15's stale fetch
    ends at once and its refresh's call outlives it. Its entry was served at its start."""
    if span.phase != "fetch" or span.cache is None or span.cache.result != "stale":
        return False
    if semconv.NEXT_FETCH_CACHE_STATUS in span.attributes:
        return False
    return all(c.end_ns <= span.end_ns + END_ROUNDING_NS for c in trace.children_of(span))


def answered(span: Span) -> int:
    """When ``span`` was done: its end, or for an HTTP call whose client span says when its
    answer came (``@vercel/otel``'s ``http.response_time``), then: the span stays open while
    the page reads the body, which nothing waits for (tens of ms on a busy server)."""
    ms = span.attributes.get(RESPONSE_TIME, "") if span.kind == "Client" else ""
    if not ms.isdigit():
        return span.end_ns
    return min(span.end_ns, span.start_ns + int(ms) * 1_000_000)


def reaches(trace: Trace) -> dict[str, int]:
    """Each span's reach, by span id: its end, or the latest reach of a child that it waits for
    (every child, unless the span is a fetch answered from its cache), cut at the navigation's
    end."""
    reach: dict[str, int] = {}
    for span, _depth in reversed(list(trace.walk())):  # children before their parents
        end = span.start_ns if is_refresh(trace, span) else answered(span)
        if not served_from_cache(trace, span):
            for child in trace.children_of(span):
                end = max(end, reach[child.span_id])
        reach[span.span_id] = end
    cut = trace.root.end_ns
    return {span_id: min(end, cut) for span_id, end in reach.items()}


def critical_path(trace: Trace, waiting: Callable[[Span], bool] | None = None) -> list[Segment]:
    """The critical path from ``trace.root``, as segments in time order covering its window.
    ``waiting``: which spans only wait (default: :func:`waits` and :func:`wraps`)."""
    root = trace.root

    def default(span: Span) -> bool:
        return waits(span) or wraps(trace, span)

    return _Walk(trace, waiting or default, reaches(trace)).walk(root, root.start_ns, root.end_ns)


class _Walk:
    """The walk of one trace (steps 1-5 of the module's docstring)."""

    def __init__(
        self, trace: Trace, waiting: Callable[[Span], bool], reach: dict[str, int]
    ) -> None:
        self.trace = trace
        self.waiting = waiting
        self.reach = reach

    def walk(self, span: Span, low: int, high: int) -> list[Segment]:
        reach = self.reach
        children = [
            c for c in self.trace.children_of(span) if reach[c.span_id] > low and c.start_ns < high
        ]
        working = [c for c in children if not self.waiting(c)]
        backwards: list[Segment] = []
        t = high
        while t > low:
            started = [c for c in working if c.start_ns < t]
            if not started:
                break
            finished = [c for c in started if reach[c.span_id] <= t]
            pick = max(finished or started, key=lambda c: (min(reach[c.span_id], t), -c.start_ns))
            end = min(reach[pick.span_id], t)
            if end < t:
                backwards.extend(reversed(_own(span, end, t)))
            start = max(pick.start_ns, low)
            backwards.extend(reversed(self.walk(pick, start, end)))
            t = start
        if t > low:
            backwards.extend(reversed(_own(span, low, t)))
        segments = [s for s in reversed(backwards) if s.end_ns > s.start_ns]
        waiters = [c for c in children if self.waiting(c)]
        return _give_to_waiters(span, segments, waiters) if waiters else segments


def _own(span: Span, start: int, end: int) -> list[Segment]:
    """``span``'s own time from ``start`` to ``end``: a gap where it was not running."""
    if span.synthetic:
        return [Segment(span, start, end, own=True, gap=True)]
    inside = (max(start, span.start_ns), min(end, span.end_ns))
    pieces = [
        Segment(span, start, min(end, span.start_ns), own=True, gap=True),
        Segment(span, *inside, own=True),
        Segment(span, max(start, span.end_ns), end, own=True, gap=True),
    ]
    return [p for p in pieces if p.end_ns > p.start_ns]


def _give_to_waiters(span: Span, segments: list[Segment], waiters: list[Span]) -> list[Segment]:
    """Split ``span``'s own segments where a waiting child ran, and give it that time."""
    out: list[Segment] = []
    for segment in segments:
        if segment.span is not span:
            out.append(segment)
            continue
        cursor = segment.start_ns
        for waiter in sorted(waiters, key=lambda w: w.start_ns):
            start = max(waiter.start_ns, cursor)
            end = min(waiter.end_ns, segment.end_ns)
            if end <= start:
                continue
            if start > cursor:
                out.append(Segment(segment.span, cursor, start, own=True, gap=segment.gap))
            out.append(Segment(waiter, start, end, own=True))
            cursor = end
        if cursor < segment.end_ns:
            out.append(Segment(segment.span, cursor, segment.end_ns, own=True, gap=segment.gap))
    return out
