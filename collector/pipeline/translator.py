"""Translate an OTLP ``ExportTraceServiceRequest`` into ``otel_traces`` columns.

The values are written exactly as the OpenTelemetry Collector contrib
ClickHouse exporter writes them, so that rows from either collector look the
same to a query:

- ids are lower-case hex, and an all-zero or absent parent id is ``''``;
- ``SpanKind`` and ``StatusCode`` are pdata's names (``Server``, ``Error``…);
- attribute values that are not strings are formatted as pdata's
  ``Value.AsString`` does: integers in decimal, booleans ``true``/``false``,
  doubles as ECMAScript numbers, bytes in base64, arrays and maps as JSON;
- ``ServiceName`` is the resource's ``service.name``;
- ``Duration`` is end minus start in nanoseconds (0 if the end precedes the start).

Spans that no store could index or hold (a trace id that is not 16 non-zero
bytes, a span id that is not 8, or a start, end or event time beyond
``DateTime64(9)``'s last instant, 2262-04-11) are rejected through
``partial_success`` and counted, never stored, so that they cannot fail the
insert of the spans around them.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from collector.consumer import Columns, SpanColumns

SPAN_KIND_NAMES = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODE_NAMES = ("Unset", "Ok", "Error")
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)
MAX_TIME_NS = 2**63 - 1
"""The last instant ``DateTime64(9)`` holds, 2262-04-11T23:47:16.854775807Z."""


@dataclass(frozen=True)
class Translation:
    """The spans that can be stored, and why the others could not."""

    spans: SpanColumns
    rejected: int
    rejection_message: str


def format_double(value: float) -> str:
    """Format a double as Go's ``encoding/json`` (and so pdata) does."""
    if math.isinf(value) or math.isnan(value):
        special = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
        return "json: unsupported value: " + special
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = repr(value)  # shortest round-trip digits, exponent form here
        mantissa, _, exponent = text.partition("e")
        sign = exponent[0] if exponent[0] in "+-" else "+"
        digits = exponent.lstrip("+-").lstrip("0") or "0"
        if mantissa.endswith(".0"):
            mantissa = mantissa[:-2]
        return f"{mantissa}e{sign}{digits}"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _json_string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or ch in "<>&\u2028\u2029":
            # Go's json.Marshal escapes HTML-significant characters too.
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_raw(value: AnyValue) -> str:
    """JSON of ``value.AsRaw()`` as Go's ``json.Marshal`` writes it (map keys sorted)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return _json_string(value.string_value)
    if which == "int_value":
        return str(value.int_value)
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "double_value":
        if math.isinf(value.double_value) or math.isnan(value.double_value):
            raise ValueError("unsupported double in JSON")
        return format_double(value.double_value)
    if which == "bytes_value":
        return _json_string(base64.b64encode(value.bytes_value).decode("ascii"))
    if which == "array_value":
        return "[" + ",".join(_json_raw(item) for item in value.array_value.values) + "]"
    if which == "kvlist_value":
        entries = {kv.key: kv.value for kv in value.kvlist_value.values}
        return (
            "{"
            + ",".join(f"{_json_string(k)}:{_json_raw(entries[k])}" for k in sorted(entries))
            + "}"
        )
    return "null"


def format_value(value: AnyValue) -> str:
    """Format an attribute value as pdata's ``Value.AsString`` does."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return str(value.int_value)
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "double_value":
        return format_double(value.double_value)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if which in ("array_value", "kvlist_value"):
        try:
            return _json_raw(value)
        except ValueError:
            return ""  # json.Marshal fails on NaN/Inf inside, and pdata then yields ""
    return ""


def attributes_to_map(attributes: Any) -> dict[str, str]:
    """A ``Map(String, String)`` value from repeated ``KeyValue``."""
    out: dict[str, str] = {}
    for kv in attributes:
        value = kv.value
        # Non-empty strings dominate real traffic: take them with one field read.
        text = value.string_value
        out[kv.key] = text if text else format_value(value)
    return out


def _service_name(attributes: list[KeyValue]) -> str:
    for kv in attributes:
        if kv.key == "service.name":
            return format_value(kv.value)
    return ""


def translate(request: ExportTraceServiceRequest) -> Translation:
    """Turn every valid span of ``request`` into one row of :class:`SpanColumns`."""
    batch = SpanColumns()
    columns = batch.columns
    # The columns in locals: this loop runs once per span, and attribute lookups add up.
    c_ts, c_trace, c_span = columns.timestamp, columns.trace_id, columns.span_id
    c_parent, c_state, c_name = columns.parent_span_id, columns.trace_state, columns.span_name
    c_kind, c_service, c_res = columns.span_kind, columns.service_name, columns.resource_attributes
    c_scope, c_scope_v, c_attrs = columns.scope_name, columns.scope_version, columns.span_attributes
    c_dur, c_status, c_status_msg = columns.duration, columns.status_code, columns.status_message
    c_ev_ts, c_ev_name = columns.events_timestamp, columns.events_name
    c_ev_attrs, c_ln_trace = columns.events_attributes, columns.links_trace_id
    c_ln_span, c_ln_state = columns.links_span_id, columns.links_trace_state
    c_ln_attrs = columns.links_attributes
    kinds = SPAN_KIND_NAMES
    statuses = STATUS_CODE_NAMES
    to_map = attributes_to_map
    rejected = 0
    first_problem = ""

    for resource_spans in request.resource_spans:
        resource_attrs = resource_spans.resource.attributes
        service = _service_name(list(resource_attrs))
        res_map = to_map(resource_attrs)
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            scope_version = scope_spans.scope.version
            for span in scope_spans.spans:
                problem = span_problem(span)
                if problem:
                    rejected += 1
                    first_problem = first_problem or problem
                    continue
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                events = span.events
                parent = span.parent_span_id
                c_ts.append(start)
                c_trace.append(span.trace_id.hex())
                c_span.append(span.span_id.hex())
                c_parent.append(parent.hex() if parent and parent != _ZERO_SPAN_ID else "")
                c_state.append(span.trace_state)
                c_name.append(span.name)
                c_kind.append(kinds[span.kind] if 0 <= span.kind < 6 else "")
                c_service.append(service)
                c_res.append(res_map)
                c_scope.append(scope_name)
                c_scope_v.append(scope_version)
                c_attrs.append(to_map(span.attributes))
                c_dur.append(end - start if end > start else 0)
                code = span.status.code
                c_status.append(statuses[code] if 0 <= code < 3 else "")
                c_status_msg.append(span.status.message)
                if events:
                    c_ev_ts.append([e.time_unix_nano for e in events])
                    c_ev_name.append([e.name for e in events])
                    c_ev_attrs.append([to_map(e.attributes) for e in events])
                else:
                    c_ev_ts.append([])
                    c_ev_name.append([])
                    c_ev_attrs.append([])
                links = span.links
                if links:
                    c_ln_trace.append(
                        [ln.trace_id.hex() if any(ln.trace_id) else "" for ln in links]
                    )
                    c_ln_span.append([ln.span_id.hex() if any(ln.span_id) else "" for ln in links])
                    c_ln_state.append([ln.trace_state for ln in links])
                    c_ln_attrs.append([to_map(ln.attributes) for ln in links])
                else:
                    c_ln_trace.append([])
                    c_ln_span.append([])
                    c_ln_state.append([])
                    c_ln_attrs.append([])
    return Translation(batch, rejected, _rejection_message(rejected, first_problem))


def _rejection_message(rejected: int, first_problem: str) -> str:
    return f"{rejected} span(s) rejected; first: {first_problem}" if rejected else ""


def span_problem(span: Span) -> str:
    """Why no store could index or hold ``span`` (see the module docstring); "" if one can."""
    trace_id = span.trace_id
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        return f"span {span.name!r}: trace id must be 16 non-zero bytes"
    span_id = span.span_id
    if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
        return f"span {span.name!r}: span id must be 8 non-zero bytes"
    events = span.events
    if (
        span.start_time_unix_nano > MAX_TIME_NS
        or span.end_time_unix_nano > MAX_TIME_NS
        or (events and max(e.time_unix_nano for e in events) > MAX_TIME_NS)
    ):
        return (
            f"span {span.name!r}: a time is past 2262-04-11, the last instant "
            "ClickHouse's DateTime64(9) holds"
        )
    return ""


def screen(request: ExportTraceServiceRequest, body: bytes | None) -> Translation:
    """The spans of ``request`` that can be stored, as a batch made from its protobuf body
    (:meth:`SpanColumns.from_bodies`), rejecting what :func:`translate` rejects. Only the
    fields that decide whether a span can be stored are read, not its attributes.

    ``body`` is ``request`` encoded, or None to encode it here. When spans are rejected,
    they are removed from ``request`` and the rest encoded again.
    """
    trace_ids: list[str] = []
    scope_names: list[str] = []
    rejected = 0
    first_problem = ""
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            for span in scope_spans.spans:
                problem = span_problem(span)
                if problem:
                    rejected += 1
                    first_problem = first_problem or problem
                    continue
                trace_ids.append(span.trace_id.hex())
                scope_names.append(scope_name)
    if rejected:
        keep_spans(request, lambda _scope, span: not span_problem(span))
        body = None
    if body is None:
        body = request.SerializeToString()
    spans = SpanColumns.from_bodies([body], trace_ids, scope_names, columns_of)
    return Translation(spans, rejected, _rejection_message(rejected, first_problem))


def keep_spans(request: ExportTraceServiceRequest, keep: Callable[[str, Span], bool]) -> None:
    """Remove from ``request`` every span for which ``keep(scope name, span)`` is false.

    protobuf's repeated fields cannot drop items in place, so the kept spans are copied.
    """
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            kept = [span for span in scope_spans.spans if keep(scope, span)]
            if len(kept) < len(scope_spans.spans):
                copies = [Span.FromString(span.SerializeToString()) for span in kept]
                del scope_spans.spans[:]
                scope_spans.spans.extend(copies)


def columns_of(bodies: list[bytes], only: Sequence[int] | None = None) -> Columns:
    """The columns of the spans of OTLP/protobuf ``bodies``, which hold only spans that can
    be stored (as :func:`screen` leaves them); with ``only``, of the spans at those positions
    (from 0, ascending) alone, and no other span is translated."""
    batch = SpanColumns()
    wanted = None if only is None else set(only)
    first = 0  # the position of the body's first span in the batch
    for body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        if wanted is not None:
            request, first = _spans_at(request, wanted, first)
        batch.extend(translate(request).spans)
    return batch.columns


def _spans_at(
    request: ExportTraceServiceRequest, wanted: set[int], first: int
) -> tuple[ExportTraceServiceRequest, int]:
    """The spans of ``request`` whose positions (counted from ``first``) are ``wanted``, each
    with its resource and scope; and the position after its last span."""
    kept = ExportTraceServiceRequest()
    position = first
    for resource_spans in request.resource_spans:
        resource: ResourceSpans | None = None
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            taken = [spans[i] for i in range(len(spans)) if position + i in wanted]
            position += len(spans)
            if not taken:
                continue
            if resource is None:
                resource = kept.resource_spans.add(resource=resource_spans.resource)
            resource.scope_spans.add(scope=scope_spans.scope, spans=taken)
    return kept, position
