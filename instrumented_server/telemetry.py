"""OpenTelemetry set-up of the reference server, and helpers that keep spans uniform.

Every span carries ``nextrace.phase`` and the current ``nextrace.build_id``.
Spans are made by the server's own tracer provider (:mod:`instrumented_server.tracer`) and
exported over OTLP/HTTP through the SDK's batch processor; tests pass an in-memory exporter
instead. The spans the SDK drops on the way are counted
(:meth:`ServerTelemetry.spans_dropped`, shown by ``/healthz``).
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.semconv._incubating.metrics.otel_metrics import (
    OTEL_SDK_PROCESSOR_SPAN_PROCESSED,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from contract import semconv
from instrumented_server.caching import Entry, Lookup
from instrumented_server.tracer import TracerProvider

if TYPE_CHECKING:
    from instrumented_server.otlp_wire import OTLPWireSpanExporter

DEFAULT_COLLECTOR_URL = "http://127.0.0.1:4318"
TRACER_NAME = "nextrace.instrumented_server"

_log = logging.getLogger(__name__)


@contextmanager
def ending(span: trace.Span) -> Iterator[trace.Span]:
    """``span``, ended on exit, an exception recorded on it as ``trace.use_span`` does (an
    ``Exception``: a cancelled task's span is not an error); not made current: every span of
    the server names its parent, so attaching and detaching a context for each would only
    cost."""
    try:
        yield span
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        span.end()


class BuildIdSpanProcessor(SpanProcessor):
    """Stamps the build id that is current when a span starts onto the spans that do not say
    it already: the request spans the ASGI instrumentation makes (:meth:`ServerTelemetry.start`
    puts it among a span's attributes, which costs less than setting it after)."""

    def __init__(self, build_id: Callable[[], str]) -> None:
        self._build_id = build_id

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:  # noqa: ARG002
        if semconv.BUILD_ID not in (span.attributes or {}):
            span.set_attribute(semconv.BUILD_ID, self._build_id())

    def on_end(self, span: ReadableSpan) -> None:
        pass


def trace_id_of(span: trace.Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


class ServerTelemetry:
    """The tracer provider of one server instance. ``shutdown`` flushes and is idempotent."""

    def __init__(
        self,
        service_name: str,
        build_id: Callable[[], str],
        *,
        collector_url: str = DEFAULT_COLLECTOR_URL,
        exporter: SpanExporter | None = None,
        instance_id: str | None = None,
    ) -> None:
        """``instance_id``: the server's ``service.instance.id``; None lets the SDK make one
        up, ``""`` says the server is no one instance (it runs several, see :meth:`_tracer`)."""
        resource = {"service.name": service_name}
        if instance_id is not None:
            resource[semconv.SERVICE_INSTANCE_ID] = instance_id
        # Flushed at exit by shutdown (registered below), which also says what was dropped.
        self.provider = TracerProvider(Resource.create(resource), shutdown_on_exit=False)
        self._build_id = build_id
        processors: list[SpanProcessor] = [BuildIdSpanProcessor(build_id)]
        self._wire: OTLPWireSpanExporter | None = None
        self._sdk_metrics: InMemoryMetricReader | None = None
        if exporter is None:
            from instrumented_server.otlp_wire import OTLPWireSpanExporter

            self._wire = OTLPWireSpanExporter(endpoint=f"{collector_url.rstrip('/')}/v1/traces")
            # The batch processor counts the spans it drops in its own metrics, which the SDK
            # keeps only when this variable is true; a user's explicit "false" is kept.
            os.environ.setdefault(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, "true")
            meters = None
            if os.environ[OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED].strip().lower() == "true":
                self._sdk_metrics = InMemoryMetricReader()
                meters = MeterProvider(metric_readers=[self._sdk_metrics], shutdown_on_exit=False)
            processors.append(BatchSpanProcessor(self._wire, meter_provider=meters))
        else:
            processors.append(SimpleSpanProcessor(exporter))
        for processor in processors:
            self.provider.add_span_processor(processor)
        self._processors = processors
        self.tracer = self.provider.get_tracer(TRACER_NAME)
        self._instance_tracers: dict[str, trace.Tracer] = {}
        self._shut_down = False
        atexit.register(self.shutdown)

    @property
    def instance_id(self) -> str:
        """The server's ``service.instance.id``, which the SDK makes up unless told."""
        return str(self.provider.resource.attributes.get(semconv.SERVICE_INSTANCE_ID, ""))

    def _tracer(self, instance: str) -> trace.Tracer:
        """The tracer of the app's ``instance`` (its ``service.instance.id``); the server's
        for ``""`` or its own id. The app's instances run in this process: their providers
        differ only by resource and share the server's processors, which :meth:`shutdown`
        flushes and stops with the server's provider."""
        if instance in ("", self.instance_id):
            return self.tracer
        tracer = self._instance_tracers.get(instance)
        if tracer is None:
            resource = self.provider.resource.merge(
                Resource({semconv.SERVICE_INSTANCE_ID: instance})
            )
            provider = TracerProvider(resource, self._processors, shutdown_on_exit=False)
            tracer = self._instance_tracers[instance] = provider.get_tracer(TRACER_NAME)
        return tracer

    @contextmanager
    def span(
        self,
        name: str,
        phase: str,
        parent: trace.Span | None,
        attributes: dict[str, Any] | None = None,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        links: Sequence[Link] = (),
        span_type: str | None = None,
        instance: str = "",
    ) -> Iterator[trace.Span]:
        """A span of ``phase`` under ``parent`` (a new trace when ``parent`` is None), made
        by the app's ``instance`` (see :meth:`_tracer`)."""
        span = self.start(
            name,
            phase,
            parent,
            attributes,
            kind=kind,
            links=links,
            span_type=span_type,
            instance=instance,
        )
        with ending(span):
            yield span

    def start(
        self,
        name: str,
        phase: str,
        parent: trace.Span | None,
        attributes: dict[str, Any] | None = None,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        links: Sequence[Link] = (),
        span_type: str | None = None,
        instance: str = "",
    ) -> trace.Span:
        """Like :meth:`span`, for a span that the caller ends itself."""
        context = trace.set_span_in_context(parent) if parent is not None else Context()
        attrs: dict[str, Any] = {
            semconv.PHASE: phase,
            semconv.BUILD_ID: self._build_id(),
            **(attributes or {}),
        }
        if span_type:
            attrs[semconv.NEXT_SPAN_TYPE] = span_type
            attrs[semconv.NEXT_SPAN_NAME] = name
        return self._tracer(instance).start_span(
            name, context=context, kind=kind, attributes=attrs, links=links
        )

    def record_cache(
        self,
        parent: trace.Span,
        layer: str,
        lookup: Lookup[Any],
        key: str,
        *,
        scope: str = "shared",
        result: str | None = None,
        extra: dict[str, Any] | None = None,
        phase: str = semconv.PHASE_CACHE,
        route: str = "",
        instance: str = "",
    ) -> None:
        """One cache interaction, as a short span with the cache attributes of the contract.

        The CDN's lookup is its own phase (``cdn``); every other lookup is ``cache``.
        """
        entry: Entry | None = lookup.entry
        attrs: dict[str, Any] = semconv.cache_lookup_attributes(
            layer=layer,
            result=result or lookup.result,
            key=key,
            scope=scope,
            reason=lookup.reason,
            age_ms=lookup.age_ms,
            source=entry.source if entry else None,
            source_trace_id=entry.source_trace_id if entry else None,
            tags=entry.tags if entry else (),
            route=route,
        )
        attrs.update(extra or {})
        with self.span(f"{layer} cache lookup", phase, parent, attrs, instance=instance):
            pass

    def spans_dropped(self) -> dict[str, int | None]:
        """The spans the SDK dropped so far: ``queue_full``, those the batch processor
        dropped because its queue was full (None when the SDK's own metrics are turned off
        with ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=false``), and ``export_failed``,
        those in exports that failed after the exporter's retries. With an exporter given
        (tests), spans go to it synchronously and none is counted."""
        if self._wire is None:
            return {"queue_full": 0, "export_failed": 0}
        queue_full = _queue_full(self._sdk_metrics) if self._sdk_metrics else None
        return {"queue_full": queue_full, "export_failed": self._wire.spans_failed}

    def force_flush(self, timeout_ms: int = 30_000) -> bool:
        return self.provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        """Flush, then say how many spans the SDK dropped, if any: the last count there is."""
        if self._shut_down:
            return
        self._shut_down = True
        atexit.unregister(self.shutdown)
        self.provider.shutdown()
        dropped = self.spans_dropped()
        if any(dropped.values()):
            _log.warning(
                "the OpenTelemetry SDK dropped spans of this server: %d with its queue full, "
                "%d in failed exports",
                dropped["queue_full"] or 0,
                dropped["export_failed"],
            )


def _queue_full(reader: InMemoryMetricReader) -> int:
    """The SDK's count of spans a batch processor dropped because its queue was full: its
    ``otel.sdk.processor.span.processed`` metric with ``error.type`` ``queue_full``."""
    data = reader.get_metrics_data()
    return sum(
        int(point.value)
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == OTEL_SDK_PROCESSOR_SPAN_PROCESSED
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
        and (point.attributes or {}).get(ERROR_TYPE) == "queue_full"
    )
