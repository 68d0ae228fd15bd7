"""The derived rows the collector writes for real Next.js traces, with their table columns.

``requests`` and ``cache_events`` have two producers. For the reference server, whose spans
carry nextrace's own attributes, materialized views fill them inside ClickHouse on every insert
(``sql/0005_cache_events_mv.sql``, ``sql/0009_requests_mv.sql``). For real Next.js apps, whose
spans must be read as a whole trace, :mod:`collector.nextjs.mapping` builds these rows and
:class:`collector.pipeline.normalizer.NextjsTraceNormalizer` inserts them. Each field names its
column
here, once; ``tests/collector/test_rows.py`` checks them against ``DESCRIBE`` of the real tables.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self


def _column(name: str, **options: Any) -> Any:
    return field(metadata={"column": name}, **options)


@dataclass  # not frozen: the normalizer makes one per request and lookup, and a frozen
# dataclass takes two and a half times as long to make
class DerivedRow:
    """A row of a derived table: its fields, in order, are the columns it writes. Rows are
    values: change one with :meth:`with_changes`."""

    TABLE: ClassVar[str]

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.metadata["column"] for f in fields(cls))

    def values(self) -> list[Any]:
        return list(_reader(type(self))(self))

    def with_changes(self, **changes: Any) -> Self:
        """A copy with ``changes``, as ``dataclasses.replace`` makes one, without its
        per-call look at the fields: the normalizer makes one per cache lookup."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__, **changes)
        return copy


_READERS: dict[type[DerivedRow], operator.attrgetter[Any]] = {}


def _reader(cls: type[DerivedRow]) -> operator.attrgetter[Any]:
    """Reads the fields of a ``cls`` row, in column order, as a tuple."""
    reader = _READERS.get(cls)
    if reader is None:
        names = [f.name for f in fields(cls)]
        reader = _READERS[cls] = operator.attrgetter(names[0], names[1], *names[2:])
    return reader


@dataclass
class RequestRow(DerivedRow):
    """One row of the ``requests`` table."""

    TABLE: ClassVar[str] = "requests"

    timestamp_ns: int = _column("Timestamp")
    trace_id: str = _column("TraceId")
    span_id: str = _column("SpanId")
    service: str = _column("ServiceName")
    route: str = _column("Route")
    kind: str = _column("Kind")  # document, rsc_navigation, rsc_prefetch, api, warmup…
    kind_source: str = _column("KindSource")  # attribute (the helper's next.prefetch) or shape
    prefetch: str = _column("Prefetch")  # none, auto, segment; "" when unknown
    method: str = _column("Method")
    path: str = _column("Path")
    status: int = _column("StatusCode")
    duration_ns: int = _column("Duration")
    ttfb_ms: float | None = _column("TtfbMs")
    render_ms: float | None = _column("RenderMs")
    middleware_ms: float | None = _column("MiddlewareMs")
    build_id: str = _column("BuildId")
    source: str = _column(
        "Source", default="nextjs"
    )  # the reference server's view writes "nextrace"
    response_bytes: int | None = _column("ResponseBytes", default=None)  # only with the helper


@dataclass
class CacheEventRow(DerivedRow):
    """One row of the ``cache_events`` table: the data layer, the full route layer when
    the helper recorded ``x-nextjs-cache``, and a layer per cache handler that
    ``@nextrace/next/cache-handler`` traces (each ``'use cache'`` handler, ``incremental``).
    Next.js does not tell a data-cache entry's age or source:
    :class:`collector.nextjs.miss_reasons.CacheHistory` fills them in for a hit from the lookup
    that stored the entry, when it saw that one. Tags stay empty."""

    TABLE: ClassVar[str] = "cache_events"

    timestamp_ns: int = _column("Timestamp")
    trace_id: str = _column("TraceId")
    span_id: str = _column("SpanId")
    service: str = _column("ServiceName")
    route: str = _column("Route")
    layer: str = _column("Layer")
    result: str = _column("Result")
    reason: str = _column("Reason")
    key: str = _column("Key")
    build_id: str = _column("BuildId")
    scope: str = _column("Scope", default="shared")
    entry_age_ms: float = _column("EntryAgeMs", default=0.0)
    entry_source: str = _column("EntrySource", default="")  # warmup, request, prefetch…
    entry_source_trace_id: str = _column("EntrySourceTraceId", default="")
    warmup_pending: bool = _column("WarmupPending", default=False)  # the helper's, on a fetch
    instance: str = _column("Instance", default="")  # the lookup's service.instance.id
    entry_source_instance: str = _column("EntrySourceInstance", default="")  # who stored it
    function: str = _column("Function", default="")  # a 'use cache' function: file#export
