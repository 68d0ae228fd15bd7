"""A tracer provider for the reference server that makes spans as plain objects.

The OpenTelemetry SDK's span validates and copies each attribute under a lock, and keeps
limits, metrics and a read-only copy for its processors: for a span with ten attributes, about
15 µs of CPU, more than the server's encoding and export of the span together
(``bench/server.py``). The server's own code sets only values of the types OTLP carries, so
this provider keeps what it is given: a span is one object, handed as it is, once ended, to the
SDK's span processors and exporters, which read it as a ``ReadableSpan``.

It implements the OpenTelemetry API (``opentelemetry.trace.TracerProvider``), so that the ASGI
instrumentation uses it too, and honours ``OTEL_SDK_DISABLED`` as the SDK does. It differs from
the SDK where the server does not need it to:

- Sampling is the SDK's default, ``ParentBased(ALWAYS_ON)``: every span, unless its parent was
  not sampled. ``OTEL_TRACES_SAMPLER`` is not read; a warning says so when it is set.
- Attributes are kept as given: not limited in number or length (the ``OTEL_*_LIMIT``
  variables are not read), nor checked, and a list is kept as the list it was, not copied
  into a tuple (the SDK would count an empty key as dropped, and write a value of an unknown
  type as its ``str``; the server sets neither).
- A span is changed by one thread at a time, as the server's asyncio tasks do: the SDK's lock
  is what costs.

``tests/instrumented_server/test_tracer.py`` holds the spans to what the SDK makes of the same
calls.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import OTEL_SDK_DISABLED, OTEL_TRACES_SAMPLER
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, SpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types
from opentelemetry.util._decorator import _agnosticcontextmanager  # as the SDK's Tracer

_UNSET = Status(StatusCode.UNSET)
_DEFAULT_SAMPLERS = ("", "parentbased_always_on")
_log = logging.getLogger(__name__)
_warned: set[str] = set()  # the samplers a warning has named
_EXCEPTION_ESCAPED = "exception.escaped"  # still written by the SDK's record_exception


def _copy(attributes: types.Attributes) -> dict[str, Any]:
    return dict(attributes) if attributes else {}


def _kept(link: Link) -> bool:
    """As the SDK: a link to an invalid context is kept if it says something else."""
    return bool(link.context.is_valid or link.attributes or link.context.trace_state)


class RecordedSpan(trace.Span):
    """A span of :class:`Tracer`. While it runs, the OpenTelemetry API's ``Span``; once
    ended, the fields of the SDK's ``ReadableSpan`` that processors and exporters read
    (``context``, ``parent``, ``attributes``, ``events``…). Changes after ``end`` are ignored."""

    __slots__ = (
        "_processors",
        "_record_exception",
        "_set_status_on_exception",
        "attributes",
        "context",
        "end_time",
        "events",
        "instrumentation_scope",
        "kind",
        "links",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )
    dropped_attributes = 0
    dropped_events = 0
    dropped_links = 0

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        tracer: Tracer,
        attributes: dict[str, Any],
        links: Sequence[Link],
        start_time: int | None,
        on_exception: tuple[bool, bool],
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.resource = tracer.resource
        self.instrumentation_scope = tracer.instrumentation_scope
        self.attributes = attributes
        self.events: list[Event] = []
        self.links = tuple(links)
        self.status = _UNSET
        self.end_time: int | None = None
        self._processors = tracer.processors
        self._record_exception, self._set_status_on_exception = on_exception
        self.start_time = start_time if start_time is not None else time.time_ns()

    # -- the API's Span ----------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self.end_time is None:
            # As the SDK: a key set again moves to the end, where the encoding puts it.
            self.attributes.pop(key, None)
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self.end_time is None:
            at = timestamp if timestamp is not None else time.time_ns()
            self.events.append(Event(name, _copy(attributes), at))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self.end_time is None and _kept(Link(context, attributes)):
            self.links += (Link(context, _copy(attributes)),)

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """As the SDK: an OK status is final, and UNSET never replaces one."""
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self.status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """An ``exception`` event with the attributes the SDK gives it."""
        kind = type(exception)
        module = kind.__module__
        recorded: dict[str, Any] = {
            EXCEPTION_TYPE: f"{module}.{kind.__qualname__}"
            if module and module != "builtins"
            else kind.__qualname__,
            EXCEPTION_MESSAGE: str(exception),
            EXCEPTION_STACKTRACE: "".join(traceback.format_exception(exception)),
            _EXCEPTION_ESCAPED: str(escaped),
            **(attributes or {}),
        }
        self.add_event("exception", recorded, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time if end_time is not None else time.time_ns()
        for processor in self._processors:
            processor.on_end(self)  # type: ignore[arg-type]  # read as a ReadableSpan

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """As the SDK's span used as a context manager: an exception is recorded and makes
        the status an error, as ``start_span`` was told; then the span ends."""
        if exc_val is not None and self.end_time is None:
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        super().__exit__(exc_type, exc_val, exc_tb)

    def __repr__(self) -> str:
        return f"RecordedSpan(name={self.name!r}, context={self.context!r})"


class Tracer(trace.Tracer):
    """Makes :class:`RecordedSpan` s of one instrumentation scope and resource."""

    def __init__(
        self,
        resource: Resource,
        scope: InstrumentationScope,
        processors: Sequence[SpanProcessor],
        ids: IdGenerator,
    ) -> None:
        self.resource = resource
        self.instrumentation_scope = scope
        self.processors = processors
        self._ids = ids
        # As the SDK: a root span's flags say whether its trace id is random.
        random_ids = TraceFlags.RANDOM_TRACE_ID if ids.is_trace_id_random() else 0
        self._root_flags = TraceFlags(TraceFlags.SAMPLED | random_ids)

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            # As the SDK: sampled as the parent was, and random as its trace id was.
            flags = parent.trace_flags & (TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
            span_context = SpanContext(
                parent.trace_id,
                self._ids.generate_span_id(),
                False,
                TraceFlags(flags),
                parent.trace_state,
            )
            if not parent.trace_flags.sampled:
                return trace.NonRecordingSpan(span_context)
        else:
            trace_id = self._ids.generate_trace_id()
            span_context = SpanContext(
                trace_id, self._ids.generate_span_id(), False, self._root_flags
            )
        span = RecordedSpan(
            name,
            span_context,
            parent if parent.is_valid else None,
            kind,
            self,
            _copy(attributes),
            [link for link in links or () if _kept(link)],
            start_time,
            (record_exception, set_status_on_exception),
        )
        for processor in self.processors:
            processor.on_start(span, context)  # type: ignore[arg-type]
        return span

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class TracerProvider(trace.TracerProvider):
    """The provider of :class:`Tracer` s that share ``resource`` and the span processors
    added. ``force_flush`` and ``shutdown`` reach every processor; ``shutdown`` is
    idempotent. With ``OTEL_SDK_DISABLED=true``, its tracers make no spans."""

    def __init__(
        self,
        resource: Resource,
        processors: Sequence[SpanProcessor] = (),
        *,
        id_generator: IdGenerator | None = None,
        shutdown_on_exit: bool = True,
    ) -> None:
        """``shutdown_on_exit``: flush and stop the processors when the interpreter exits, as
        the SDK's provider does (False for a provider that shares another's processors)."""
        self.resource = resource
        self._processors: list[SpanProcessor] = list(processors)
        self._ids = id_generator or RandomIdGenerator()
        self._disabled = os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true"
        sampler = os.environ.get(OTEL_TRACES_SAMPLER, "").strip().lower()
        if sampler not in _DEFAULT_SAMPLERS and sampler not in _warned:
            _warned.add(sampler)  # once a process: the server makes a provider per instance
            _log.warning(
                "%s=%s is not read by the reference server: it samples every span, as "
                "parentbased_always_on does",
                OTEL_TRACES_SAMPLER,
                sampler,
            )
        self._lock = threading.Lock()
        self._shut_down = False
        self._at_exit = atexit.register(self.shutdown) if shutdown_on_exit else None

    def add_span_processor(self, processor: SpanProcessor) -> None:
        self._processors.append(processor)

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> trace.Tracer:
        if self._disabled:
            return trace.NoOpTracer()
        scope = InstrumentationScope(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )
        return Tracer(self.resource, scope, self._processors, self._ids)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """As the SDK's: every processor, within one deadline; False if one did not finish."""
        deadline = time.monotonic() + timeout_millis / 1000
        flushed = True
        for processor in self._processors:
            left_ms = int((deadline - time.monotonic()) * 1000)
            flushed = left_ms > 0 and processor.force_flush(left_ms) and flushed
        return flushed

    def shutdown(self) -> None:
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        if self._at_exit is not None:
            atexit.unregister(self._at_exit)
        for processor in self._processors:
            processor.shutdown()
