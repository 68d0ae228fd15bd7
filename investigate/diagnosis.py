"""Why a trace took its time, in Next.js terms, read off its critical path.

:func:`diagnose` sorts every stretch of the critical path into a *part* (queued, middleware,
render, fetch, streaming, …) whose durations add up to the navigation's, names the time no
span covers (waiting before the server saw the request, the middleware's hand-off to the
request, between the render's end and the last chunk) and the time a span covers outside its
children (``in <span>, outside its children``), and writes one line of cause: the part that
cost most, with what made it slow (a data-cache miss, its upstream time and why it missed,
sequential fetches, the prefetches it queued behind, a reload onto a new build). A fetch
that missed the data cache (or was not cached) on the critical path is named in the cause
whichever part cost most, and so is a ``'use cache'`` function that ran because its lookup
missed: its run is the time between its lookup and the fill of the same entry
(``@nextrace/next/cache-handler``'s spans), and the cause names it with the time the path
spent in that run and why its entry was not there.

A real Next.js fetch (``AppRender.fetch``) holds the HTTP call it made (``@vercel/otel``'s
client span): the call's time, until its answer came, is the ``fetch`` part, the upstream's;
the fetch's own time before the call left (the data-cache lookup) and, for a lookup that
missed, after its answer came (storing the entry) is part ``cache``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from collector.nextjs.mapping import handler_entry
from contract import semconv
from contract.nextjs import START_RESPONSE
from investigate.critical_path import Segment, answered, critical_path
from investigate.reader import Reader
from investigate.spans import CacheOutcome, Span, Trace, load_trace

MS = 1_000_000
SEQUENTIAL_SHARE = 0.1  # a fetch holding the path up a tenth as long as the slowest counts
PARTS = {  # phase of the span on the path -> part
    "server": "server",
    "request": "server",
    "cdn": "cdn",
    "middleware": "middleware",
    "route": "routing",
    "render": "render",
    "fetch": "fetch",
    "cache": "cache",
    "stream": "streaming",
    "prefetch": "browser",
}


@dataclass(frozen=True, slots=True)
class Context:
    """What the store says happened around a trace, beyond its own spans."""

    prefetches_in_flight: int = 0  # the server's prefetch requests while it waited
    deploy_build: str = ""  # the last deploy before the trace
    deploy_at_ns: int = 0


@dataclass(frozen=True, slots=True)
class Stretch:
    """A critical-path segment, with its part and, for time no span covers, its name."""

    segment: Segment
    part: str
    uncovered: str  # "" when a span was doing the work


@dataclass
class Diagnosis:
    trace: Trace
    path: list[Stretch]
    parts: dict[str, int]  # part -> ns on the critical path; they add up to the root's
    cause: str
    context: Context = field(default_factory=Context)

    def stretches_by_span(self) -> dict[str, list[Stretch]]:
        """The critical path's stretches under each span: its own and its descendants'."""
        under: dict[str, list[Stretch]] = defaultdict(list)
        for stretch in self.path:
            for span in self.trace.lineage(stretch.segment.span):
                under[span.span_id].append(stretch)
        return dict(under)

    @property
    def on_path_ns(self) -> dict[str, int]:
        """Nanoseconds each span spent on the critical path, by span id."""
        totals: dict[str, int] = defaultdict(int)
        for stretch in self.path:
            totals[stretch.segment.span.span_id] += stretch.segment.duration_ns
        return dict(totals)


def diagnose(trace: Trace, reader: Reader | None = None) -> Diagnosis:
    """The diagnosis of ``trace``. With a ``reader``, the cause says what the store knows
    around the trace when it matters: the prefetches a queued navigation waited behind, the
    deploy before a miss a deploy caused (a query each, only then)."""
    first = _first_request(trace)
    path = [_stretch(trace, segment, first) for segment in critical_path(trace)]
    totals: dict[str, int] = defaultdict(int)
    for stretch in path:
        totals[stretch.part] += stretch.segment.duration_ns
    parts = dict(sorted(totals.items(), key=lambda kv: -kv[1]))
    context = _context(reader, trace, parts, first) if reader else Context()
    return Diagnosis(trace, path, parts, _cause(trace, path, parts, context), context)


def diagnose_stored(reader: Reader, trace_id: str) -> Diagnosis:
    """The diagnosis of the stored trace ``trace_id`` (:class:`TraceNotFound` if none is)."""
    return diagnose(load_trace(reader, trace_id), reader)


def _context(reader: Reader, trace: Trace, parts: dict[str, int], first: Span | None) -> Context:
    prefetches = 0
    if first is not None and next(iter(parts), "") == "queued":
        prefetches = reader.rows(
            "prefetches_in_flight",
            wait_start_ns=trace.root.start_ns,
            wait_end_ns=first.start_ns,
        )[0]["prefetches"]
    missed = [s.start_ns for s in trace.spans if s.cache is not None and s.cache.reason == "deploy"]
    if not missed:
        return Context(prefetches_in_flight=prefetches)
    deploy = reader.rows("last_deploy", before_ns=max(missed))[0]  # it may come mid-trace
    return Context(
        prefetches_in_flight=prefetches,
        deploy_build=deploy["build"],
        deploy_at_ns=deploy["at_ns"] if deploy["build"] else 0,
    )


def _first_request(trace: Trace) -> Span | None:
    """The first server request of a trace a browser started (None if the root is one)."""
    first = trace.first_request()
    if first is None or first is trace.root or trace.root.phase == "request":
        return None
    return first


def _requests(trace: Trace) -> list[Span]:
    """The requests a browser's navigation made: the server's outermost request spans under
    it, middleware passes left out."""
    if trace.root.phase != "navigation":
        return []
    found = []
    for span, _depth in trace.walk():
        if span.phase == "request" and not trace.is_pass(span):
            lineage = list(trace.lineage(span))[1:]
            if not any(s.phase == "request" for s in lineage) and trace.root in lineage:
                found.append(span)
    return found


def _calls(trace: Trace, span: Span) -> list[Span]:
    """The HTTP calls a Next.js fetch made (``@vercel/otel``'s client spans under it)."""
    return [c for c in trace.children_of(span) if c.kind == "Client" and not c.phase]


def _browser_side(trace: Trace, span: Span) -> bool:
    """A span of the browser that holds the server's requests (the navigation, its request)."""
    if span.phase not in ("navigation", "prefetch", ""):
        return False
    return trace.root.phase in ("navigation", "prefetch") and not any(
        s.phase == "request" for s in trace.lineage(span)
    )


def _stretch(trace: Trace, segment: Segment, first_request: Span | None) -> Stretch:
    span = segment.span
    if _browser_side(trace, span) and (segment.own or segment.gap):
        if first_request is not None and segment.end_ns <= first_request.start_ns:
            return Stretch(segment, "queued", "waiting before the server saw the request")
        requests = _requests(trace)
        if requests and segment.start_ns >= max(r.end_ns for r in requests):
            return Stretch(segment, "browser", "in the browser after the last byte")
        between = "in the browser between two requests" if len(requests) > 1 else ""
        return Stretch(segment, "browser", between)
    part = _part_of(trace, span)
    if segment.gap:
        if any(r is not span and r.start_ns >= segment.end_ns for r in trace.requests_under(span)):
            return Stretch(segment, "server", "no span: the middleware's hand-off to the request")
        if span.synthetic:
            return Stretch(segment, "server", "no span: between the request's spans")
        return Stretch(segment, part, f"no span: after {span.name} ended")
    if span.phase == "stream":
        return Stretch(segment, part, "between the render's end and the last chunk")
    if span.phase == "fetch" and segment.own:
        calls = _calls(trace, span)
        if calls and segment.end_ns <= min(c.start_ns for c in calls):
            return Stretch(
                segment,
                "cache",
                f"in {span.name} before its call left (the lookup, or a busy server)",
            )
        cache = _lookup(trace, span)
        stores = cache is not None and cache.result in ("miss", "stale")
        if calls and stores and segment.start_ns >= max(answered(c) for c in calls):
            return Stretch(segment, "cache", f"in {span.name} after its answer (the store)")
    if segment.own and span.phase == "request" and not trace.is_pass(span):
        first_byte = _first_byte(trace, span)
        if first_byte is not None and segment.start_ns >= first_byte:
            return Stretch(segment, "streaming", f"in {span.name}, streaming after the first byte")
    if segment.own and trace.children_of(span) and span.phase != "fetch":
        return Stretch(segment, part, f"in {span.name}, outside its children")
    if span.cache is not None and span.cache.layer == "router":
        return Stretch(segment, "browser", "")  # the browser's router cache
    return Stretch(segment, part, "")


def _first_byte(trace: Trace, request: Span) -> int | None:
    """When ``request``'s response started (Next.js's ``start response`` span in it, or the
    reference server's stream), if known."""
    starts = [
        s.start_ns
        for s, _depth in trace.subtree(request)
        if s.phase == "stream" or s.attributes.get("next.span_type") == START_RESPONSE
    ]
    return min(starts, default=None)


def _part_of(trace: Trace, span: Span) -> str:
    """The part of a span: its nearest fetch's for a lookup or a call inside one, else its own
    phase's, else (a span nextrace has no phase for) its nearest ancestor's that has one."""
    if _fetch_of(trace, span) is not None:
        return "fetch"
    phased = next((s for s in trace.lineage(span) if s.phase), None)
    return "other" if phased is None else PARTS.get(phased.phase, phased.phase)


def _fetch_of(trace: Trace, span: Span) -> Span | None:
    """The fetch span ``span`` is, or is inside of."""
    return next((s for s in trace.lineage(span) if s.phase == "fetch"), None)


def _cause(trace: Trace, path: list[Stretch], parts: dict[str, int], context: Context) -> str:
    top = next(iter(parts), "")
    clauses = []
    reload = _reload(trace)
    if reload:
        clauses.append(reload)
    if top == "queued":
        behind = context.prefetches_in_flight
        clauses.append(
            f"queued {parts[top] / MS:.0f} ms before the server saw the request"
            + (f", behind {behind} prefetch requests" if behind else "")
        )
    elif top == "fetch":
        clauses.append(_fetch_cause(trace, path, context))
    elif top == "server":
        clauses.append(f"{parts[top] / MS:.0f} ms in the server outside its traced phases")
    elif top:
        clauses.append(f"{top} {parts[top] / MS:.0f} ms")
    if top != "fetch":  # a fetch that waited for its upstream is named whatever cost most
        blocking = _fetch_cause(trace, path, context, blocking_only=True)
        if blocking:
            clauses.append(blocking)
    clauses.extend(_use_cache_runs(trace, path))
    return "; ".join(clauses)


def _use_cache_runs(trace: Trace, path: list[Stretch]) -> list[str]:
    """The ``'use cache'`` functions that ran on the path because their lookup missed, the
    longest first: each from its lookup's end to the start of the fill of the same entry (the
    request's end without one), with the path's time in that window."""
    fills = [s for s in trace.spans if s.attributes.get(semconv.CACHE_OPERATION) == "set"]
    runs = []
    for lookup in trace.spans:
        cache = lookup.cache
        if cache is None or not cache.layer.startswith("use_cache") or cache.result != "miss":
            continue
        entry = handler_entry(lookup.attributes)
        fill = next(
            (
                f
                for f in fills
                if handler_entry(f.attributes) == entry and f.start_ns >= lookup.end_ns
            ),
            None,
        )
        until = fill.start_ns if fill is not None else trace.root.end_ns
        on_path = sum(
            max(0, min(s.segment.end_ns, until) - max(s.segment.start_ns, lookup.end_ns))
            for s in path
        )
        if on_path > 0:
            function = lookup.attributes.get(semconv.CACHE_FUNCTION) or "a function"
            reason = cache.reason or "reason unknown"
            runs.append(
                (
                    on_path,
                    f"'use cache' {function} ran {on_path / MS:.0f} ms "
                    f"({cache.layer} miss: {reason})",
                )
            )
    return [text for _, text in sorted(runs, key=lambda run: -run[0])]


def _reload(trace: Trace) -> str:
    """A client navigation that had to load the whole page again: the RSC answer came from
    another build (Next.js then does a hard navigation)."""
    requests = _requests(trace)
    kinds = [r.request_kind for r in requests]
    if "rsc_navigation" in kinds and "document" in kinds[kinds.index("rsc_navigation") + 1 :]:
        build = requests[kinds.index("rsc_navigation")].attributes.get("nextrace.build_id", "")
        return "reloaded as a full page" + (f": the RSC answer came from {build}" if build else "")
    return ""


def _fetch_cause(
    trace: Trace, path: list[Stretch], context: Context, *, blocking_only: bool = False
) -> str:
    """The fetches that held the path up, slowest first named, each with its time waiting on
    its upstream (the ``fetch`` part under it) and its data-cache outcome; several of them one
    after another under the same parent are a waterfall. ``blocking_only``: only fetches that
    called their upstream because the data cache did not answer ("" if none did)."""
    fetch_time: dict[str, int] = defaultdict(int)
    fetches: dict[str, Span] = {}
    for stretch in path:
        span = _fetch_of(trace, stretch.segment.span)
        if span is not None and stretch.part == "fetch":
            fetch_time[span.span_id] += stretch.segment.duration_ns
            fetches[span.span_id] = span
    if blocking_only:
        fetches = {k: f for k, f in fetches.items() if _blocked(trace, f)}
    if not fetches:
        return ""
    slowest = fetches[max(fetches, key=lambda k: fetch_time[k])]
    notable = fetch_time[slowest.span_id] * SEQUENTIAL_SHARE
    in_turn = sorted(
        (
            s
            for s in fetches.values()
            if s.parent_id == slowest.parent_id and fetch_time[s.span_id] >= notable
        ),
        key=lambda s: s.start_ns,
    )
    described = [
        f"{s.name} {fetch_time[s.span_id] / MS:.0f} ms{_outcome(trace, s, context)}"
        for s in in_turn
    ]
    if len(described) > 1:
        return "sequential fetches: " + " → ".join(described)
    return described[0]


def _lookup(trace: Trace, fetch: Span) -> CacheOutcome | None:
    """The data-cache outcome of ``fetch``: its own, or its lookup span's."""
    lookup = next((c for c in trace.children_of(fetch) if c.cache is not None), fetch)
    return lookup.cache


def _blocked(trace: Trace, fetch: Span) -> bool:
    """Whether ``fetch`` waited for its upstream: the data cache missed (or was bypassed)."""
    cache = _lookup(trace, fetch)
    return cache is not None and cache.result in ("miss", "bypass")


def _outcome(trace: Trace, fetch: Span, context: Context) -> str:
    cache = _lookup(trace, fetch)
    if cache is None:
        return ""
    if cache.result == "bypass":
        return " (not cached)"
    if cache.result not in ("miss", "stale"):
        return f" ({cache.layer} cache {cache.result})"
    text = f" (data-cache {cache.result}: {cache.reason or 'reason unknown'}"
    if cache.reason == "deploy" and context.deploy_build:
        after = (fetch.start_ns - context.deploy_at_ns) / 1e9
        text += f", {after:.1f} s after deploy {context.deploy_build}"
    return text + ")"
