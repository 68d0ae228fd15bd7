"""The CDN phase: answer from the edge cache, refresh stale entries, store what the origin said.

A hit or a stale entry is answered at the edge, without reaching the origin; a stale one is
refreshed in the background, in a trace of its own linked to the request that found it. A
response the origin rendered is stored once its last chunk is sent, keyed as the CDN keys it
(method, path, query and the headers Next.js varies on).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

from opentelemetry import trace
from opentelemetry.trace import Link
from starlette.responses import Response

from contract import semconv
from instrumented_server.caching import Lookup, Source
from instrumented_server.cdn import CacheControl, CdnEntry
from instrumented_server.incoming import Incoming
from instrumented_server.render import Rendered
from instrumented_server.state import ServerState
from instrumented_server.telemetry import trace_id_of


class OriginAnswer(NamedTuple):
    """What the phases behind the CDN answered; ``rendered`` is None for a body-less answer
    (a redirect, a 404)."""

    status: int
    headers: dict[str, str]
    rendered: Rendered | None


Origin = Callable[[Incoming, trace.Span, Source], Awaitable[OriginAnswer]]
"""The phases behind the CDN (``NextServer.origin``), filling caches as ``Source``."""


@dataclass(frozen=True)
class EdgeLookup:
    """The CDN's key for a request and what it found; ``lookup`` is None when the app has no
    CDN in front."""

    key: str
    lookup: Lookup[CdnEntry] | None

    @property
    def header(self) -> str:
        """``x-nextrace-cdn``: HIT, STALE, MISS, BYPASS, REVALIDATED or OFF."""
        return self.lookup.result.upper() if self.lookup else "OFF"

    def stores(self, incoming: Incoming) -> bool:
        """Whether the origin's answer to ``incoming`` goes into the CDN."""
        return self.lookup is not None and incoming.method == "GET"


def look_up(state: ServerState, incoming: Incoming, span: trace.Span) -> EdgeLookup:
    """Look the request up at the edge, recording the lookup as the ``cdn`` phase."""
    cdn = state.cdn
    key = cdn.key(incoming.method, incoming.path, incoming.query, incoming.facts.headers)
    if not state.definition.cdn.enabled:
        return EdgeLookup(key, None)
    lookup = cdn.lookup(key, incoming.method)
    route = lookup.entry.headers.get("x-nextrace-route", "") if lookup.entry else ""
    state.telemetry.record_cache(span, "cdn", lookup, key, phase=semconv.PHASE_CDN, route=route)
    return EdgeLookup(key, lookup)


def answer_at_edge(
    state: ServerState, edge: EdgeLookup, incoming: Incoming, span: trace.Span, origin: Origin
) -> Response | None:
    """The CDN's own answer (a hit, or a stale entry refreshed in the background), if any."""
    lookup = edge.lookup
    if lookup is None or lookup.entry is None or lookup.result not in ("hit", "stale"):
        return None
    entry = lookup.entry
    incoming.name_span(span, entry.headers.get("x-nextrace-route", incoming.path))
    if lookup.result == "stale":
        state.background.spawn(_refresh(state, edge.key, incoming, span, origin))
    return Response(
        entry.body, entry.status, headers={**entry.headers, "x-nextrace-cdn": edge.header}
    )


def store(
    state: ServerState,
    key: str,
    incoming: Incoming,
    answer: OriginAnswer,
    body: bytes,
    source: Source,
    trace_id: str,
) -> None:
    """Store the origin's ``answer`` to ``incoming`` (its body complete) under ``key``."""
    rendered = answer.rendered
    assert rendered is not None
    state.cdn.store(
        key,
        status=answer.status,
        headers=answer.headers,
        body=body,
        control=CacheControl.parse(rendered.cache_control),
        route_path=incoming.path,
        query=incoming.query,
        tags=rendered.cache_tags,
        source=source,
        source_trace_id=trace_id,
    )


async def _refresh(
    state: ServerState, key: str, incoming: Incoming, request_span: trace.Span, origin: Origin
) -> None:
    """The CDN's background revalidation of a stale entry: a trace of its own, linked."""
    with state.telemetry.span(
        "cdn revalidate",
        semconv.PHASE_REVALIDATE,
        None,
        {
            semconv.REVALIDATE_TRIGGER: "cdn_stale",
            semconv.REVALIDATE_TARGET: incoming.path,
            semconv.REQUEST_KIND: incoming.kind,
        },
        links=[Link(request_span.get_span_context())],
    ) as span:
        answer = await origin(incoming, span, "revalidation")
        if answer.rendered is None:
            return
        body = b"".join([c.data async for c in answer.rendered.chunks])
        store(state, key, incoming, answer, body, "revalidation", trace_id_of(span))
