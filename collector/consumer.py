"""The one interface between pipeline stages, and the columnar batch it carries.

Like the OpenTelemetry Collector's ``ConsumeTraces``, every stage after the
receiver implements :class:`TracesConsumer`. Spans travel as columns, in the
order of the ``otel_traces`` table, so that the exporter can hand them to
ClickHouse in one columnar insert without touching each span again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

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


def _empty_columns() -> list[list[Any]]:
    return [[] for _ in COLUMN_NAMES]


@dataclass
class SpanColumns:
    """A batch of spans as one list per column of :data:`COLUMN_NAMES`.

    ``Timestamp`` and ``Events.Timestamp`` hold Unix nanoseconds (ints).
    """

    columns: list[list[Any]] = field(default_factory=_empty_columns)

    def __len__(self) -> int:
        return len(self.columns[0])

    def extend(self, other: SpanColumns) -> None:
        """Append the spans of ``other`` after the spans of this batch."""
        for mine, theirs in zip(self.columns, other.columns, strict=True):
            mine.extend(theirs)

    def column(self, name: str) -> list[Any]:
        return self.columns[COLUMN_NAMES.index(name)]


class TracesConsumer(Protocol):
    """A pipeline stage that accepts spans.

    ``consume`` either takes responsibility for every span it is given or
    raises: :class:`collector.errors.TransientError` when the caller should
    retry later, :class:`collector.errors.PermanentError` when it never should.
    """

    def consume(self, spans: SpanColumns) -> None: ...
