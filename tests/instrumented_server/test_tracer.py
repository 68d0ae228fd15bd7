"""The server's tracer makes, from the same API calls, the spans the OpenTelemetry SDK makes:
their OTLP encoding, by the SDK's own encoder, is byte for byte the same."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from instrumented_server.otlp_wire import OTLPWireEncoder
from instrumented_server.tracer import TracerProvider
from tests.builders import ReplayedIds

INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=20)
VALUE = st.one_of(
    TEXT,
    st.booleans(),
    INT64,
    st.floats(allow_nan=False),
    st.lists(TEXT, max_size=3).map(tuple),
    st.lists(INT64, max_size=3),
    st.none(),  # kept by both, written as an empty value
)
KEYS = st.text(min_size=1, max_size=20)  # as the server writes them: the SDK drops an empty one
ATTRIBUTES = st.dictionaries(KEYS, VALUE, max_size=6)
IDS = st.integers(1, 2**64 - 1)
TIMES = st.integers(0, 2**62)


Call = tuple[str, tuple[Any, ...]]  # a method of the span, and its arguments


@st.composite
def calls(draw: st.DrawFn) -> list[Call]:
    """What the server, or the ASGI instrumentation, may do to a running span; an ``end``
    among them makes the calls after it ignored."""
    made: list[Call] = []
    for _ in range(draw(st.integers(0, 6))):
        choice = draw(st.integers(0, 7))
        if choice == 0:
            made.append(("set_attribute", (draw(KEYS), draw(VALUE))))
        elif choice == 1:
            made.append(("set_attributes", (draw(ATTRIBUTES),)))
        elif choice == 2:
            made.append(("add_event", (draw(TEXT), draw(ATTRIBUTES), draw(TIMES))))
        elif choice == 3:
            context = SpanContext(draw(IDS), draw(st.sampled_from([0, 7])), is_remote=False)
            made.append(("add_link", (context, draw(ATTRIBUTES))))
        elif choice == 4:
            made.append(("update_name", (draw(TEXT),)))
        elif choice == 5:
            code = draw(st.sampled_from(list(StatusCode)))
            description = draw(st.sampled_from([None, "boom"]))
            status = (Status(code, description),) if draw(st.booleans()) else (code, description)
            made.append(("set_status", status))
        elif choice == 6:
            error = draw(st.sampled_from([ValueError("bad value"), KeyError("k"), OSError(5)]))
            made.append(
                ("record_exception", (error, draw(ATTRIBUTES), draw(TIMES), draw(st.booleans())))
            )
        else:
            made.append(("end", (draw(TIMES),)))
    return made


@st.composite
def scripts(draw: st.DrawFn) -> list[dict[str, Any]]:
    spans = []
    for index in range(draw(st.integers(1, 4))):
        # The first is a root, so that every example makes at least one span.
        parent = draw(st.sampled_from(["none", "remote", "earlier"])) if index else "none"
        spans.append(
            {
                "name": draw(TEXT),
                "kind": draw(st.sampled_from(list(SpanKind))),
                "attributes": draw(ATTRIBUTES),
                # (context, attributes): the Links are made for each tracer, since the SDK
                # cleans a Link's attributes in place
                "links": [
                    (
                        SpanContext(draw(IDS), draw(st.sampled_from([0, 9])), is_remote=False),
                        draw(ATTRIBUTES),
                    )
                    for _ in range(draw(st.integers(0, 2)))
                ],
                "parent": parent,
                "remote": SpanContext(
                    draw(IDS) << 64 | draw(IDS),
                    draw(IDS),
                    is_remote=draw(st.booleans()),
                    trace_flags=TraceFlags(draw(st.sampled_from([0, 1, 2, 3]))),
                    trace_state=TraceState(draw(st.sampled_from([[], [("vendor", "a1")]]))),
                ),
                "start": draw(TIMES),
                "calls": draw(calls()),
                "end": draw(TIMES),
            }
        )
    return spans


def _run(provider: trace.TracerProvider, script: list[dict[str, Any]]) -> list[SpanContext]:
    """Make the spans of ``script``; the contexts of all, exported or not."""
    tracer = provider.get_tracer("nextrace.instrumented_server", "1.0")
    made: list[trace.Span] = []
    for step in script:
        parent = None
        if step["parent"] == "remote":
            parent = trace.set_span_in_context(NonRecordingSpan(step["remote"]))
        elif step["parent"] == "earlier":
            parent = trace.set_span_in_context(made[-1])
        span = tracer.start_span(
            step["name"],
            context=parent,
            kind=step["kind"],
            attributes=step["attributes"],
            links=[Link(context, dict(attributes)) for context, attributes in step["links"]],
            start_time=step["start"],
        )
        for method, arguments in step["calls"]:
            getattr(span, method)(*arguments)
        span.end(step["end"])
        made.append(span)
    return [span.get_span_context() for span in made]


def _sdk_defaults() -> dict[str, str]:
    """The environment without the OpenTelemetry variables only the SDK reads (sampler,
    limits), and with the SDK enabled: both tracers' defaults."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {**kept, "OTEL_SDK_DISABLED": "false"}


def _spans(
    make: Callable[[SimpleSpanProcessor, IdGenerator], trace.TracerProvider],
    ids: IdGenerator,
    script: list[dict[str, Any]],
) -> tuple[list[ReadableSpan], list[SpanContext]]:
    """The spans ``script`` makes through the provider ``make`` gives, as exported; and the
    contexts of all it started, the spans not sampled too."""
    kept = InMemorySpanExporter()
    with mock.patch.dict(os.environ, _sdk_defaults(), clear=True):
        contexts = _run(make(SimpleSpanProcessor(kept), ids), script)
    return list(kept.get_finished_spans()), contexts


RESOURCE = Resource({"service.name": "shop", "service.instance.id": "i-1"})


def _sdk(processor: SimpleSpanProcessor, ids: IdGenerator) -> trace.TracerProvider:
    provider = SdkTracerProvider(resource=RESOURCE, id_generator=ids, shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider


def _ours(processor: SimpleSpanProcessor, ids: IdGenerator) -> trace.TracerProvider:
    return TracerProvider(RESOURCE, [processor], id_generator=ids, shutdown_on_exit=False)


@settings(max_examples=300, deadline=None)
@given(script=scripts(), seed=st.integers(0, 2**32), random_ids=st.booleans())
def test_the_same_calls_make_the_spans_the_sdk_makes(
    script: list[dict[str, Any]], seed: int, random_ids: bool
) -> None:
    sdk, sdk_contexts = _spans(_sdk, ReplayedIds(random.Random(seed), random_ids), script)
    ours, our_contexts = _spans(_ours, ReplayedIds(random.Random(seed), random_ids), script)
    assert len(ours) == len(sdk) >= 1
    assert encode_spans(ours).SerializeToString() == encode_spans(sdk).SerializeToString()
    # the encoding leaves the W3C flags out, and the spans not sampled: a child propagates
    # the context of each
    assert our_contexts == sdk_contexts
    # and the server's own encoder, which it exports them with, writes the same bytes
    assert OTLPWireEncoder().encode(ours) == encode_spans(sdk).SerializeToString()


def test_a_span_current_through_the_api_is_the_parent_of_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    kept = InMemorySpanExporter()
    provider = TracerProvider(RESOURCE, [SimpleSpanProcessor(kept)], shutdown_on_exit=False)
    tracer = provider.get_tracer("t")

    def request_failing_after_its_render() -> trace.Span:
        with tracer.start_as_current_span("request") as request:
            with tracer.start_as_current_span("render"):
                pass
            raise RuntimeError(request)

    with pytest.raises(RuntimeError) as raised:
        request_failing_after_its_render()
    request = raised.value.args[0]
    render, ended = kept.get_finished_spans()
    assert render.parent == request.get_span_context()
    assert ended.status.status_code is StatusCode.ERROR  # as the SDK's use_span records it
    assert [event.name for event in ended.events] == ["exception"]


def test_with_the_sdk_disabled_no_span_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(os.environ, "OTEL_SDK_DISABLED", "true")
    kept = InMemorySpanExporter()
    provider = TracerProvider(RESOURCE, [SimpleSpanProcessor(kept)], shutdown_on_exit=False)
    span = provider.get_tracer("t").start_span("s")
    span.end()
    assert not span.is_recording()
    assert kept.get_finished_spans() == ()


@pytest.mark.parametrize(("record", "set_status"), [(True, True), (False, False)])
def test_a_span_used_as_a_context_manager_records_an_exception_as_the_sdks_does(
    record: bool, set_status: bool
) -> None:
    made = {}
    for name, make in (("sdk", _sdk), ("ours", _ours)):
        kept = InMemorySpanExporter()
        with mock.patch.dict(os.environ, _sdk_defaults(), clear=True):
            tracer = make(SimpleSpanProcessor(kept), ReplayedIds(random.Random(1))).get_tracer("t")
        span = tracer.start_span("s", record_exception=record, set_status_on_exception=set_status)
        with contextlib.suppress(ValueError), span:
            raise ValueError("boom")
        (ended,) = kept.get_finished_spans()
        made[name] = (
            ended.status.status_code,
            ended.status.description,
            [(event.name, dict(event.attributes or {})) for event in ended.events],
        )
    assert made["ours"] == made["sdk"]
    assert (made["ours"][0] is StatusCode.ERROR) == set_status
