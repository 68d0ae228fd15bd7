"""The critical path of a trace: which span the root was waiting on at every instant.

The algorithm (``docs/trace-view.md`` explains it with pictures):

1. Walk a span's time window backwards from its end, with a cursor ``t``.
2. Among the span's children that started before ``t``, pick the one that finished last at
   or before ``t`` (whatever finished last most likely let the next step start); if none has
   finished by ``t``, the one still running at ``t``. Ties go to the child that started
   first, which covers more.
3. Time between that end and ``t`` is the span's own (no child ran): a segment of its own.
4. The child's window ``[max(child start, window start), clipped end]`` is walked the same way,
   and the cursor moves to the child's start.
5. When no child started before ``t``, the rest of the window is the span's own.

What this does with awkward timing:

- **Overlapping siblings** (A 0-100 ms and B 50-150 ms): B covers 50-150, and A covers
  0-50, because A was running then. Jaeger looks, after B, only for a child that *finished*
  before B started, finds none, and calls 0-50 the parent's own time (its critical path
  mis-attributes such siblings, jaegertracing/jaeger-ui#2371); a sibling that ends exactly
  when the next starts is skipped the same way (jaegertracing/jaeger#9173). Here it counts.
- **A parallel sibling still running** when the next step starts (fetch B waits for fetch A
  while fetch C runs beside both): A, which finished, is taken over C, which did not.
- **Late children**, which end after their parent (a background revalidation, a span closed
  late): clipped to the parent's window; a child starting after its parent ended is not on
  its parent's path at all. A child that starts before its parent (clock skew) is clipped to
  the parent's start.
- **Waiting spans**: a span that only waits for its siblings' work (Next.js's response
  stream, which lasts as long as the render that feeds it) would otherwise take the render's
  place, because it ends a moment later. Such spans (:func:`waits`) are left out of step 2
  and cover only time no other child covers: the time between the render's end and the last
  chunk.

The segments returned cover the root's window exactly, in time order, so their durations add
up to the root's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nextrace.spans import Span, Trace

WAITING_PHASES = frozenset({"stream"})


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the critical path: ``span`` is what the trace was waiting on. ``own`` is
    true when that was the span itself, with none of its children running."""

    span: Span
    start_ns: int
    end_ns: int
    own: bool

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


def waits(span: Span) -> bool:
    """Whether ``span`` only waits for its siblings' work (see the module's docstring)."""
    return span.phase in WAITING_PHASES


def critical_path(trace: Trace, waiting: Callable[[Span], bool] = waits) -> list[Segment]:
    """The critical path from ``trace.root``, as segments in time order covering its window."""
    root = trace.root
    return _walk(trace, root, root.start_ns, root.end_ns, waiting)


def _walk(
    trace: Trace, span: Span, low: int, high: int, waiting: Callable[[Span], bool]
) -> list[Segment]:
    children = [c for c in trace.children_of(span) if c.end_ns > low and c.start_ns < high]
    working = [c for c in children if not waiting(c)]
    backwards: list[Segment] = []
    t = high
    while t > low:
        started = [c for c in working if c.start_ns < t]
        if not started:
            break
        finished = [c for c in started if c.end_ns <= t]
        pick = max(finished or started, key=lambda c: (min(c.end_ns, t), -c.start_ns))
        end = min(pick.end_ns, t)
        if end < t:
            backwards.append(Segment(span, end, t, own=True))
        start = max(pick.start_ns, low)
        backwards.extend(reversed(_walk(trace, pick, start, end, waiting)))
        t = start
    if t > low:
        backwards.append(Segment(span, low, t, own=True))
    segments = [s for s in reversed(backwards) if s.end_ns > s.start_ns]
    waiters = [c for c in children if waiting(c)]
    return _give_to_waiters(span, segments, waiters) if waiters else segments


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
                out.append(Segment(segment.span, cursor, start, own=True))
            out.append(Segment(waiter, start, end, own=True))
            cursor = end
        if cursor < segment.end_ns:
            out.append(Segment(segment.span, cursor, segment.end_ns, own=True))
    return out
