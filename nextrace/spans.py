"""One stored trace as a tree of spans that know their Next.js phase and cache outcome.

Both producers are read the same way: the reference server's spans say their phase
(``nextrace.phase``), cache outcome and request kind themselves; a real Next.js app's say
their code path (``next.span_type``), which :data:`NEXT_SPAN_PHASES` maps to the same phases,
and their cache outcomes and request kinds come from the rows the collector derived for them
(``cache_events``, ``requests``), so a Next.js fetch span shows its data-cache result and why
it missed like any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nextrace.errors import NextraceError
from nextrace.reader import Reader

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")

# next.span_type of a real Next.js app -> the phase the reference server names.
NEXT_SPAN_PHASES = {
    "BaseServer.handleRequest": "request",
    "Middleware.execute": "middleware",
    "NextNodeServer.findPageComponents": "route",
    "NextNodeServer.getLayoutOrPageModule": "route",
    "AppRender.getBodyResult": "render",
    "BaseServer.renderToResponse": "render",
    "AppRouteRouteHandlers.runHandler": "render",
    "AppRender.fetch": "fetch",
    "NextNodeServer.startResponse": "stream",
}


DERIVED = {  # CacheOutcome's fields -> the columns of trace_derived_rows.sql, after cache_
    "layer": "layer",
    "result": "result",
    "reason": "reason",
    "entry_source": "entry_source",
    "entry_source_trace_id": "entry_trace_id",
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

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass
class Trace:
    """The spans of one trace as a tree. A span whose parent is not stored is a root; the
    root the trace view and the critical path start from is the earliest and longest."""

    trace_id: str
    spans: list[Span]
    children: dict[str, list[Span]] = field(default_factory=dict)
    roots: list[Span] = field(default_factory=list)
    by_id: dict[str, Span] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spans.sort(key=lambda s: (s.start_ns, -s.end_ns))
        self.by_id = {s.span_id: s for s in self.spans}
        for span in self.spans:
            if span.parent_id and span.parent_id in self.by_id:
                self.children.setdefault(span.parent_id, []).append(span)
            else:
                self.roots.append(span)

    @property
    def root(self) -> Span:
        return self.roots[0]

    def children_of(self, span: Span) -> list[Span]:
        return self.children.get(span.span_id, [])

    def lineage(self, span: Span) -> Iterator[Span]:
        """``span``, its parent, and so on up to its root."""
        at: Span | None = span
        while at is not None:
            yield at
            at = self.by_id.get(at.parent_id)

    def first_request(self) -> Span | None:
        """The server's first request span: the root itself, or a browser root's child."""
        return next((s for s in self.spans if s.phase == "request"), None)

    def walk(self) -> Iterable[tuple[Span, int]]:
        """Every span with its depth, parents before children, siblings by start."""
        stack = [(root, 0) for root in reversed(self.roots)]
        while stack:
            span, depth = stack.pop()
            yield span, depth
            stack.extend((child, depth + 1) for child in reversed(self.children_of(span)))


def check_trace_id(text: str) -> str:
    """A trace id as the store keeps it (32 lowercase hex digits), or a one-line error."""
    trace_id = text.strip().lower()
    if not TRACE_ID.match(trace_id):
        raise NextraceError(f"not a trace id: {text!r} (a trace id is 32 hexadecimal digits)")
    return trace_id


def load_traces(reader: Reader, trace_ids: Sequence[str]) -> dict[str, Trace]:
    """The stored traces among ``trace_ids``, by id: one query, and one more when some spans
    do not say their cache outcome or request kind themselves (a real Next.js app's)."""
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
    return {trace_id: Trace(trace_id, spans) for trace_id, spans in by_trace.items()}


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
    phase = attributes.get("nextrace.phase") or NEXT_SPAN_PHASES.get(
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
    )
