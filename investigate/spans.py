"""One stored trace as a tree of spans that know their Next.js phase and cache outcome, and
the navigation it holds: the spans that make it up and its extent.

Both producers are read the same way: the reference server's spans say their phase
(``nextrace.phase``), cache outcome and request kind themselves; a real Next.js app's say
their code path (``next.span_type``), which :data:`contract.nextjs.SPAN_PHASES` maps to the
same phases, and their cache outcomes and request kinds come from the rows the collector
derived for them (``cache_events``, ``requests``), so a Next.js fetch span shows its
data-cache result and why it missed like any other.

The navigation (:class:`Trace` ``root``) follows the spans Next.js really makes
(``docs/trace-view.md`` shows each shape):

- a browser's navigation span, when the trace has one, is the navigation;
- else the root that holds the request (a ``BaseServer.handleRequest`` span that is not only a
  middleware pass). Its extent runs to the end of its last request span, which on Next.js 16
  behind a proxy is the inner request span, a child that starts after its parent (the proxy's
  pass) ended;
- Next.js 15's middleware pass (``next.bubble``, no request inside) is a span beside the
  request, or in a trace of its own when the request came without a ``traceparent``: it is
  joined to its request by what both carry (:func:`collector.nextjs.mapping.pass_of`).

When the navigation is not one span's window, its root is a *synthetic* span over the spans
that make it up (``Span.synthetic``), named after the request, so that its duration, and the
critical path's parts, are the whole navigation's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.nextjs.mapping import (
    BUBBLE,
    PASS_ROUNDING_NS,
    PASS_WINDOW_NS,
    MiddlewarePass,
    pass_key,
    pass_of,
)
from contract.errors import NextraceError
from contract.nextjs import ROUTE_SPANS, SPAN_PHASES, served_route
from investigate.reader import Reader

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


DERIVED = {  # CacheOutcome's fields -> the columns of trace_derived_rows.sql, after cache_
    "layer": "layer",
    "result": "result",
    "reason": "reason",
    "entry_source": "entry_source",
    "entry_source_trace_id": "entry_trace_id",
    "entry_source_instance": "entry_instance",
}


class TraceNotFound(NextraceError):
    """The store holds no span of the trace asked for."""


@dataclass(frozen=True, slots=True)
class CacheOutcome:
    """What one cache lookup found, as ``cache_events`` stores it."""

    layer: str
    result: str  # hit, miss, stale, bypass, revalidated
    reason: str  # why it missed: cold, deploy, expired, invalidated, …
    entry_source: str  # what stored the entry it found: build, warmup, revalidation, …
    entry_source_trace_id: str
    entry_source_instance: str = ""  # the app instance that stored it, where the collector saw


@dataclass(frozen=True, slots=True)
class Span:
    """One stored span, with what the trace view shows of it."""

    trace_id: str
    span_id: str
    parent_id: str
    service: str
    name: str
    start_ns: int
    end_ns: int
    error: bool
    phase: str
    attributes: Mapping[str, str]
    cache: CacheOutcome | None = None
    request_kind: str = ""  # document, rsc_navigation, rsc_prefetch, … (requests.Kind)
    linked_trace_ids: tuple[str, ...] = ()  # span links: the warm-up or revalidation traces
    kind: str = ""  # Server, Client, Internal (the span kind)
    synthetic: bool = False  # nextrace's: a navigation's extent over its spans (see Trace)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def bubbles(self) -> bool:
        """A request span of a middleware pass that let the request go on (Next.js's own)."""
        return self.phase == "request" and self.attributes.get(BUBBLE) == "true"


@dataclass
class Trace:
    """The spans of one trace as a tree (a span whose parent is not stored is a root), and the
    navigation it holds: ``root``, the span whose window is the navigation's (synthetic when no
    stored span's is, see the module's docstring), over ``top``, the spans that make it up.
    ``spans`` may hold spans of another trace joined to this one's navigation (Next.js 15's
    middleware pass in a trace of its own)."""

    trace_id: str
    spans: list[Span]
    children: dict[str, list[Span]] = field(default_factory=dict)
    roots: list[Span] = field(default_factory=list)
    by_id: dict[str, Span] = field(default_factory=dict)
    top: list[Span] = field(default_factory=list)
    root: Span = field(init=False)
    request: Span | None = field(init=False)  # the navigation's request, when it is a server's

    def __post_init__(self) -> None:
        self.spans.sort(key=lambda s: (s.start_ns, -s.end_ns))
        self.by_id = {s.span_id: s for s in self.spans}
        for span in self.spans:
            if span.parent_id and span.parent_id in self.by_id:
                self.children.setdefault(span.parent_id, []).append(span)
            else:
                self.roots.append(span)
        self._navigation()

    def _navigation(self) -> None:
        """Find the navigation: ``top``, ``root`` and ``request``."""
        self.request = None
        browser = [r for r in self.roots if r.phase == "navigation"]
        holding = [r for r in self.roots if self.requests_under(r)]
        if browser or not holding:
            self.top = [(browser or self.roots)[0]]
            self.root = self.top[0]
            return
        primary = holding[0]  # the earliest, and the longest of those
        requests = self.requests_under(primary)
        # The request the collector's row is of (its kind says so), else the outermost.
        self.request = next((r for r in requests if r.request_kind), requests[0])
        joined = self.pass_of(self.request, [r for r in self.roots if self.is_pass(r)])
        self.top = [joined, primary] if joined is not None else [primary]
        start = min(s.start_ns for s in self.top)
        end = max(primary.end_ns, *(r.end_ns for r in requests))
        if self.top == [primary] and end == primary.end_ns:
            self.root = primary
            return
        named = requests[-1]  # the innermost: behind a proxy, the one that has the route
        name = named.name
        route = self.route_of(primary)
        if route and "/" not in name:  # Next.js 16 names its outer spans "GET", "RSC GET"
            name = f"{name} {route}"
        self.root = Span(
            trace_id=self.trace_id,
            span_id="",
            parent_id="",
            service=self.request.service,
            name=name,
            start_ns=start,
            end_ns=end,
            error=any(r.error for r in requests),
            phase="request",
            attributes={**self.request.attributes, **named.attributes},
            request_kind=self.request.request_kind,
            kind=self.request.kind,
            synthetic=True,
        )
        self.children[""] = self.top

    def route_of(self, span: Span) -> str:
        """The route ``span``'s request served, as its ``requests`` row names it:
        ``next.route`` of its innermost request span that has one, else of the first span of
        its subtree that has one (verbose mode); a route handler's without the ``/route``
        that Next.js 15 names its file with."""
        spans = [s for s, _depth in self.subtree(span)]
        types = {str(s.attributes.get("next.span_type", "")) for s in spans}
        return served_route(self._route_in(spans), types)

    @staticmethod
    def _route_in(spans: list[Span]) -> str:
        for at in reversed([s for s in spans if s.phase == "request"]):
            route = at.attributes.get("next.route") or at.attributes.get("http.route")
            if route:
                return route
        for span_type in ROUTE_SPANS:  # as the collector reads a request's route
            for at in spans:
                if at.attributes.get("next.span_type") == span_type:
                    route = at.attributes.get("next.route", "")
                    if route:
                        return route
        return ""

    def requests_under(self, span: Span) -> list[Span]:
        """The request spans in ``span``'s subtree (itself included) that are not only a
        middleware pass, outermost first."""
        return [s for s, _ in self.subtree(span) if s.phase == "request" and not self.is_pass(s)]

    def is_pass(self, span: Span) -> bool:
        """Whether ``span`` is Next.js 15's middleware pass: it let the request go on
        (``next.bubble``) and no request span under it served the request."""
        return span.attributes.get(BUBBLE) == "true" and not any(
            s.phase == "request" and not s.bubbles for s, _depth in self.subtree(span)
        )

    def pass_of(self, request: Span, passes: Iterable[Span]) -> Span | None:
        """The pass among ``passes`` that let ``request`` go on
        (collector.nextjs.mapping.pass_of)."""
        by_id = {p.span_id: p for p in passes}
        found = pass_of(
            pass_key(request.service, dict(request.attributes)),
            request.start_ns,
            [_as_pass(p) for p in by_id.values()],
        )
        return None if found is None else by_id[found.span_id]

    def subtree(self, span: Span) -> Iterator[tuple[Span, int]]:
        """``span`` and its descendants, each with its depth below ``span``, parents first."""
        stack = [(span, 0)]
        while stack:
            at, depth = stack.pop()
            yield at, depth
            stack.extend(
                (child, depth + 1) for child in reversed(self.children.get(at.span_id, []))
            )

    @property
    def start_ns(self) -> int:
        return self.root.start_ns

    @property
    def duration_ns(self) -> int:
        """The navigation's duration: its root's."""
        return self.root.duration_ns

    def children_of(self, span: Span) -> list[Span]:
        return self.children.get(span.span_id, [])

    def parent_of(self, span: Span) -> Span | None:
        """``span``'s parent: its stored parent, or the synthetic root of a top span."""
        parent = self.by_id.get(span.parent_id) if span.parent_id else None
        if parent is None and self.root.synthetic and span is not self.root and span in self.top:
            return self.root
        return parent

    def lineage(self, span: Span) -> Iterator[Span]:
        """``span``, its parent, and so on up to its root."""
        at: Span | None = span
        while at is not None:
            yield at
            at = self.parent_of(at)

    def first_request(self) -> Span | None:
        """The server's first request span: the root itself, or a browser root's child."""
        return next((s for s in self.spans if s.phase == "request"), None)

    def walk(self) -> Iterable[tuple[Span, int]]:
        """Every span with its depth, parents before children, siblings by start: the root
        first (with the spans that make up the navigation under it), then the other roots."""
        others = [r for r in self.roots if r not in self.top and r is not self.root]
        firsts = [self.root] if self.root.synthetic else self.top
        stack = [(root, 0) for root in reversed([*firsts, *others])]
        while stack:
            span, depth = stack.pop()
            yield span, depth
            stack.extend((child, depth + 1) for child in reversed(self.children_of(span)))


def _as_pass(span: Span) -> MiddlewarePass:
    return MiddlewarePass(
        key=pass_key(span.service, dict(span.attributes)),
        trace_id=span.trace_id,
        span_id=span.span_id,
        start_ns=span.start_ns,
        end_ns=span.end_ns,
        middleware_ns=None,
    )


def check_trace_id(text: str) -> str:
    """A trace id as the store keeps it (32 lowercase hex digits), or a one-line error."""
    trace_id = text.strip().lower()
    if not TRACE_ID.match(trace_id):
        raise NextraceError(f"not a trace id: {text!r} (a trace id is 32 hexadecimal digits)")
    return trace_id


def load_traces(reader: Reader, trace_ids: Sequence[str]) -> dict[str, Trace]:
    """The stored traces among ``trace_ids``, by id: one query, one more when some spans do
    not say their cache outcome or request kind themselves (a real Next.js app's), and one
    more when a Next.js 15 request's middleware pass may be in a trace of its own."""
    rows = reader.rows("trace_spans", trace_ids=list(trace_ids))
    derived: dict[tuple[str, str], dict[str, Any]] = {}
    unsaid = {r["trace_id"] for r in rows if _needs_derived_rows(r["attributes"])}
    if unsaid:
        for row in reader.rows("trace_derived_rows", trace_ids=sorted(unsaid)):
            merged = derived.setdefault((row["trace_id"], row["span_id"]), {})
            merged.update({k: v for k, v in row.items() if v})
    by_trace: dict[str, list[Span]] = {}
    for row in rows:
        span = span_of(row, derived.get((row["trace_id"], row["span_id"]), {}))
        by_trace.setdefault(row["trace_id"], []).append(span)
    traces = {trace_id: Trace(trace_id, spans) for trace_id, spans in by_trace.items()}
    return _join_detached_passes(reader, traces)


def _join_detached_passes(reader: Reader, traces: dict[str, Trace]) -> dict[str, Trace]:
    """``traces``, each Next.js request whose middleware pass came in a trace of its own
    joined to that pass's spans (one query for all; each pass joins one request at most)."""
    alone = {
        trace_id: trace.request
        for trace_id, trace in traces.items()
        if trace.request is not None
        and len(trace.top) == 1
        and _needs_derived_rows(trace.request.attributes)
        and not trace.request.bubbles  # Next.js 16: the request is inside its pass
    }
    if not alone:
        return traces
    starts = [request.start_ns for request in alone.values()]
    rows = reader.rows(
        "detached_passes",
        services=sorted({request.service for request in alone.values()}),
        start_ns=min(starts) - PASS_WINDOW_NS,
        end_ns=max(starts) + PASS_ROUNDING_NS,
    )
    by_trace: dict[str, list[Span]] = {}
    for row in rows:
        by_trace.setdefault(row["trace_id"], []).append(span_of(row, {}))
    passes = [s for spans in by_trace.values() for s in spans if s.bubbles]
    joined = dict(traces)
    for trace_id, request in sorted(alone.items(), key=lambda kv: kv[1].start_ns):
        trace = traces[trace_id]
        found = trace.pass_of(request, passes) if passes else None
        if found is None:
            continue
        passes.remove(found)  # each pass let one request go on
        joined[trace_id] = Trace(trace_id, [*trace.spans, *by_trace[found.trace_id]])
    return joined


def load_trace(reader: Reader, trace_id: str) -> Trace:
    trace = load_traces(reader, [trace_id]).get(trace_id)
    if trace is None:
        raise TraceNotFound(f"no span of trace {trace_id} is stored")
    return trace


def _needs_derived_rows(attributes: Mapping[str, str]) -> bool:
    """A Next.js span whose meaning only the collector's derived rows hold."""
    return "next.span_type" in attributes and "nextrace.phase" not in attributes


def span_of(row: Mapping[str, Any], derived: Mapping[str, Any]) -> Span:
    """A :class:`Span` from a row of ``trace_spans.sql``; its cache outcome and request kind
    from its attributes, or else from the collector's ``derived`` rows for it."""
    attributes: dict[str, str] = row["attributes"]
    phase = attributes.get("nextrace.phase") or SPAN_PHASES.get(
        attributes.get("next.span_type", ""), ""
    )
    # A producer that says it on the span wins; else the collector derived it.
    said = {
        "layer": attributes.get("cache.layer", ""),
        "result": attributes.get("cache.result", ""),
        "reason": attributes.get("cache.miss_reason", ""),
        "entry_source": attributes.get("cache.entry.source", ""),
        "entry_source_trace_id": attributes.get("cache.entry.source_trace_id", ""),
    }
    if not said["layer"]:
        said = {field: derived.get(f"cache_{column}", "") for field, column in DERIVED.items()}
    cache = CacheOutcome(**said) if said["layer"] else None
    linked = [t for t in row["linked_trace_ids"] if t != row["trace_id"]]
    if cache is not None and cache.entry_source_trace_id not in ("", row["trace_id"]):
        linked.append(cache.entry_source_trace_id)
    return Span(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_id=row["parent_id"],
        service=row["service"],
        name=row["name"],
        start_ns=row["start_ns"],
        end_ns=row["start_ns"] + row["duration_ns"],
        error=row["status"] in ("Error", "STATUS_CODE_ERROR"),
        phase=phase,
        attributes=attributes,
        cache=cache,
        request_kind=derived.get("request_kind") or attributes.get("nextrace.request.kind", ""),
        linked_trace_ids=tuple(dict.fromkeys(linked)),
        kind=row.get("kind", ""),
    )
