"""The one interface between pipeline stages, and the batch it carries.

Like the OpenTelemetry Collector's ``ConsumeTraces``, every stage after the
receiver implements :class:`TracesConsumer`. Spans travel as the OTLP request bodies
they came in, which the exporter hands to ClickHouse as they are, and as named columns
(:class:`Columns`, in the order of the ``otel_traces`` table) once a stage reads them
so: the normalizer, and the exporter's columnar insert.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, cast

Attributes = dict[str, str]

COLUMN_NAMES: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)
"""Columns of ``otel_traces`` that the collector writes, in insert order."""


class Columns(NamedTuple):
    """One list per column of :data:`COLUMN_NAMES`, in the same order, named in snake case
    (``Events.Timestamp`` is ``events_timestamp``). Times are Unix nanoseconds."""

    timestamp: list[int]
    trace_id: list[str]
    span_id: list[str]
    parent_span_id: list[str]
    trace_state: list[str]
    span_name: list[str]
    span_kind: list[str]
    service_name: list[str]
    resource_attributes: list[Attributes]
    scope_name: list[str]
    scope_version: list[str]
    span_attributes: list[Attributes]
    duration: list[int]
    status_code: list[str]
    status_message: list[str]
    events_timestamp: list[list[int]]
    events_name: list[list[str]]
    events_attributes: list[list[Attributes]]
    links_trace_id: list[list[str]]
    links_span_id: list[list[str]]
    links_trace_state: list[list[str]]
    links_attributes: list[list[Attributes]]

    @classmethod
    def empty(cls) -> Columns:
        return cls(*([] for _ in COLUMN_NAMES))

    def lists(self) -> tuple[list[Any], ...]:
        """The columns, for code that treats every column alike."""
        return cast("tuple[list[Any], ...]", self)

    def take(self, rows: list[int]) -> Columns:
        """The values at positions ``rows``, in that order."""
        return Columns(*([column[i] for i in rows] for column in self.lists()))

    def slice(self, start: int, stop: int) -> Columns:
        return Columns(*(column[start:stop] for column in self.lists()))


@dataclass
class SpanColumns:
    """A batch of spans as one list per column of :data:`COLUMN_NAMES`.

    ``Timestamp`` and ``Events.Timestamp`` hold Unix nanoseconds (ints).
    ``encoded``, when not None, holds OTLP/protobuf ``ExportTraceServiceRequest`` bodies that
    hold exactly these spans, in this order: the exporter can hand them to ClickHouse as they
    are (:mod:`collector.storage.staging`). A batch made from bodies builds its columns the first
    time
    a stage reads :attr:`columns`; :attr:`trace_ids` and :attr:`scope_names` it knows without.
    ``source`` is the OTLP request body the spans came from, as received (decompressed),
    and ``source_kind`` its :mod:`collector.pipeline.wal` kind: what the write-ahead log stores.
    ``wal_ids`` are the write-ahead log records whose spans this batch holds, oldest first,
    and ``wal_log`` the id of that log (empty: a log whose tokens named none).
    ``maybe_stored`` says an earlier insert of the batch may have stored some of it (the
    insert failed without an answer, or a crash interrupted it): the exporter checks.
    ``redo`` is the insert of the batch that failed last, which the exporter repeats as it was
    before anything else: its token and the positions of its spans (None: all of them).
    """

    built: Columns | None = field(default_factory=Columns.empty)
    source: bytes = b""
    source_kind: int = 0
    wal_ids: list[int] = field(default_factory=list)
    wal_log: str = ""
    maybe_stored: bool = False
    redo: tuple[str, list[int] | None] | None = None
    encoded: list[bytes] | None = None
    _trace_ids: list[str] = field(default_factory=list, repr=False)
    _scope_names: list[str] = field(default_factory=list, repr=False)
    _merged_bytes: int = field(default=0, repr=False)
    _build: Callable[[list[bytes], Sequence[int] | None], Columns] | None = field(
        default=None, repr=False
    )

    @classmethod
    def from_bodies(
        cls,
        bodies: list[bytes],
        trace_ids: list[str],
        scope_names: list[str],
        build: Callable[[list[bytes], Sequence[int] | None], Columns],
    ) -> SpanColumns:
        """A batch of the spans of ``bodies``, whose trace ids and scope names, in order,
        are ``trace_ids`` and ``scope_names``; its columns are built by ``build`` (the
        translator's: of every span, or of the spans at the positions given) when first
        read."""
        return cls(
            built=None,
            encoded=bodies,
            _trace_ids=trace_ids,
            _scope_names=scope_names,
            _build=build,
        )

    @property
    def columns(self) -> Columns:
        if self.built is None:
            assert self._build is not None, "a batch of bodies is made with its builder"
            self.built = self._build(self.encoded or [], None)
        return self.built

    def rows_at(self, positions: list[int]) -> Columns:
        """The columns of the spans at ``positions`` (ascending) alone; a batch of bodies
        builds only theirs."""
        if self.built is None and self._build is not None:
            return self._build(self.encoded or [], positions)
        return self.columns.take(positions)

    @property
    def trace_ids(self) -> list[str]:
        """The spans' trace ids, in order, without building the columns."""
        return self._trace_ids if self.built is None else self.built.trace_id

    @property
    def scope_names(self) -> list[str]:
        """The spans' instrumentation scope names, in order, without building the columns."""
        return self._scope_names if self.built is None else self.built.scope_name

    def __len__(self) -> int:
        return len(self.trace_ids)

    @property
    def nbytes(self) -> int:
        """About how much memory the batch holds, measured by the bodies it came from."""
        return self._merged_bytes or len(self.source)

    def extend(self, other: SpanColumns) -> None:
        """Append the spans of ``other`` after the spans of this batch. The batch keeps its
        bodies when both have them. ``other``'s lists are copied, never shared."""
        self._build = self._build or other._build
        if not len(self) and self.encoded is None:
            self.encoded = []  # an empty batch takes the form of what it is given
        if self.encoded is not None and other.encoded is not None:
            if self.built is not None and other.built is None:
                # Read from the bodies from now on; built again if a stage asks.
                self._trace_ids, self._scope_names = list(self.trace_ids), list(self.scope_names)
                self.built = None
            self.encoded.extend(other.encoded)
            if self.built is None:
                self._trace_ids.extend(other.trace_ids)
                self._scope_names.extend(other.scope_names)
        elif self.encoded is not None:
            self.built = self.columns  # from the bodies, which no longer hold the batch
            self.encoded = None
        if self.built is not None:
            for mine, theirs in zip(self.columns.lists(), other.columns.lists(), strict=True):
                mine.extend(theirs)
        self.wal_ids.extend(other.wal_ids)
        self.wal_log = self.wal_log or other.wal_log
        self.maybe_stored = self.maybe_stored or other.maybe_stored
        self._merged_bytes = self.nbytes + other.nbytes

    @property
    def wal_range(self) -> tuple[int, int] | None:
        """The first and last write-ahead log records of the batch, if it came through one."""
        return (self.wal_ids[0], self.wal_ids[-1]) if self.wal_ids else None

    def take(self, rows: list[int]) -> SpanColumns:
        """A batch of the spans at positions ``rows``, in that order."""
        return SpanColumns(self.columns.take(rows))


class Component(Protocol):
    """The lifecycle every long-lived part of the collector shares, as the OpenTelemetry
    Collector's ``component.Component`` does: the store, the write-ahead log, the exporter,
    the batch processor, the normalizer, the replay and the statistics writer.

    ``start`` once; :class:`collector.service.Collector` starts them in the order data
    depends on them and shuts them down in the reverse order. ``shutdown`` flushes what the
    part holds and stops; it is idempotent, and past its ``timeout_s`` whatever it could not
    store stays in the write-ahead log or is counted as dropped. The stages that hold spans
    also have ``force_flush``, as opentelemetry-python's ``SpanProcessor`` does.
    """

    def start(self) -> None: ...

    def shutdown(self, timeout_s: float = 30.0) -> None: ...


class TracesConsumer(Protocol):
    """A pipeline stage that accepts spans.

    ``consume`` either takes responsibility for every span it is given or
    raises: :class:`collector.errors.TransientError` when the caller should
    retry later, :class:`collector.errors.PermanentError` when it never should.
    """

    def consume(self, spans: SpanColumns) -> None: ...
