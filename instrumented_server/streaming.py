"""The stream phase: send the shell, then each chunk as it is ready, and time them.

Records a zero-length ``start response`` span when the first byte leaves
(``NextNodeServer.startResponse``, as Next.js marks time to first byte) and a
``stream`` span from the first byte to the last, with one ``chunk`` event per
chunk giving its offset from the start of the request and its size.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from opentelemetry import trace

from contract import nextjs, semconv
from instrumented_server.render import Chunk
from instrumented_server.telemetry import ServerTelemetry


async def stream(
    chunks: AsyncIterator[Chunk],
    *,
    telemetry: ServerTelemetry,
    parent: trace.Span,
    started: float,
    on_complete: Callable[[bytes], None] | None = None,
) -> AsyncIterator[bytes]:
    """Yield the body's bytes, recording the stream phase under ``parent``.

    ``started`` is the ``time.monotonic()`` at which the request arrived;
    ``on_complete`` receives the whole body once the last chunk was sent.
    """
    stream_span: trace.Span | None = None
    sent = bytearray()
    count = 0
    try:
        async for chunk in chunks:
            offset_ms = (time.monotonic() - started) * 1000
            if stream_span is None:
                with telemetry.span(
                    "start response",
                    semconv.PHASE_STREAM,
                    parent,
                    {semconv.STREAM_TTFB_MS: round(offset_ms, 3)},
                    span_type=nextjs.START_RESPONSE,
                ):
                    pass
                stream_span = telemetry.start(
                    "stream",
                    semconv.PHASE_STREAM,
                    parent,
                    {semconv.STREAM_TTFB_MS: round(offset_ms, 3)},
                )
                parent.set_attribute(semconv.STREAM_TTFB_MS, round(offset_ms, 3))
            stream_span.add_event(
                semconv.CHUNK_EVENT,
                {
                    semconv.CHUNK_OFFSET_MS: round(offset_ms, 3),
                    semconv.CHUNK_SIZE: len(chunk.data),
                    semconv.CHUNK_BOUNDARY: chunk.boundary,
                },
            )
            count += 1
            sent.extend(chunk.data)
            yield chunk.data
    except Exception as exc:
        if stream_span is not None:
            stream_span.record_exception(exc)
            stream_span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
        raise
    finally:
        if stream_span is not None:
            stream_span.set_attribute(semconv.STREAM_CHUNKS, count)
            stream_span.set_attribute(semconv.STREAM_BYTES, len(sent))
            stream_span.end()
        parent.set_attribute(semconv.HTTP_RESPONSE_BODY_SIZE, len(sent))
    if on_complete is not None:
        on_complete(bytes(sent))
