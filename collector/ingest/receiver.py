"""OTLP/HTTP trace receiver: ``POST /v1/traces``.

Answers as the OTLP/HTTP specification says:

- 200 with an ``ExportTraceServiceResponse`` in the request's encoding, with
  ``partial_success`` when some spans were rejected;
- 400 for a body that cannot be decoded, 413 for a body over the size limit,
  415 for an unsupported ``Content-Type`` or ``Content-Encoding`` — the
  sender must not retry these;
- 503 with ``Retry-After`` when the pipeline cannot take the spans now, or the
  request's bytes would take the collector past its memory budget
  (:class:`collector.memory.MemoryLimiter`), counted as they arrive, chunked or not,
  and as they are decompressed — the sender should retry.

A sender's credential is checked before its body is read (the token by
:class:`collector.ingest.auth.BearerTokenMiddleware`, a CDN's by its :class:`LogConverter`); a
body signed by its vendor is read into a budget of its own before it is verified, and
decompressed only after. Decompression is bounded in members and output and hands the
event loop back at every step (:func:`collector.decoder.inflate`).

A 200 means the spans are in the write-ahead log (when there is one), synced to
disk as its ``fsync`` policy says: ``before_ack`` is awaited before answering.
A body must arrive within ``body_timeout_s``, or the answer is 408.

Error bodies are a ``google.rpc.Status`` in the request's encoding.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector import decoder
from collector.consumer import TracesConsumer
from collector.errors import PermanentError, TransientError
from collector.memory import DEFAULT_MEMORY_BYTES, Hold, MemoryLimiter
from collector.pipeline.translator import screen
from collector.pipeline.wal import KIND_JSON, KIND_PROTOBUF
from collector.telemetry import CollectorTelemetry

TRACES_PATH = "/v1/traces"
_GZIP_MAGIC = b"\x1f\x8b"

_REJECT_REASONS = {
    400: "malformed",
    401: "wrong_signature",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",
}


async def read_body(
    request: Request, limit: int, timeout_s: float = 30.0, hold: Hold | None = None
) -> bytes:
    """The request body; a 413 :class:`PermanentError` once it would exceed ``limit``, a 408
    one if it has not all arrived within ``timeout_s``. With ``hold``, every chunk is counted
    against its memory budget as it arrives, before the next is read (TransientError, 503,
    past the budget): a body sent in chunks is counted as one with a ``Content-Length``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_body(request, limit, hold)
    except TimeoutError:
        raise PermanentError(
            f"the body did not arrive within {timeout_s:.0f} s", http_status=408
        ) from None


def declared_size(request: Request) -> int:
    """The ``Content-Length`` of ``request``, or 0 when it declares none."""
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else 0


async def _read_body(request: Request, limit: int, hold: Hold | None) -> bytes:
    declared = declared_size(request)
    if declared > limit:
        raise PermanentError(
            f"body of {declared} bytes is larger than the limit of {limit} bytes",
            http_status=413,
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PermanentError(f"body is larger than the limit of {limit} bytes", http_status=413)
        if hold is not None:
            hold.grow_to(size)
        chunks.append(chunk)
    return b"".join(chunks)


class LogConverter(Protocol):
    """Reads a body of another format (a CDN's log lines) as an OTLP export, and checks the
    credential of its sender: from the request's head before the body is read (``admit``),
    and, if the vendor signs the body, from the body before it is decompressed (``verify``).
    Each raises PermanentError (401) to refuse, and calls :func:`collector.ingest.connections.admit`
    once the sender is known."""

    def admit(self, request: Request, /) -> None: ...

    def verify(self, request: Request, raw: bytes, /) -> None: ...

    def __call__(self, request: Request, body: bytes, /) -> ExportTraceServiceRequest: ...

    def finished(self, request: Request, acknowledged: bool, /) -> None:
        """The export read from ``request`` is done with: ``acknowledged`` (on disk, about to
        get 200), or refused. Called for every request the converter was called for."""
        ...


class OTLPHttpReceiver:
    """Decodes OTLP/HTTP trace exports and hands the spans to ``consumer``; with a
    ``converter``, reads bodies of its format instead, under the same limits and answers.

    A body is counted against ``memory`` as it arrives (from its ``Content-Length`` on, if it
    declares one), and so is its decompressed form. With ``unauthenticated`` (a smaller
    budget), a body whose sender is not known until it is read (a signed delivery, a page's
    beacon) is counted against that one while it arrives, and against ``memory`` only once
    it is verified: senders without a credential cannot take the budget of those with one.
    """

    def __init__(
        self,
        consumer: TracesConsumer,
        telemetry: CollectorTelemetry,
        *,
        max_body_bytes: int,
        body_timeout_s: float = 30.0,
        memory: MemoryLimiter | None = None,
        unauthenticated: MemoryLimiter | None = None,
        before_ack: Callable[[], Awaitable[None]] | None = None,
        converter: LogConverter | None = None,
    ) -> None:
        self._converter = converter
        self._consumer = consumer
        self._telemetry = telemetry
        self._max_body_bytes = max_body_bytes
        self._body_timeout_s = body_timeout_s
        self._before_ack = before_ack
        self._memory = memory or MemoryLimiter(DEFAULT_MEMORY_BYTES)
        self._unauthenticated = unauthenticated

    def routes(self) -> list[Route]:
        return [Route(TRACES_PATH, self.export, methods=["POST"])]

    async def export(self, request: Request) -> Response:
        kind = decoder.media_type(request.headers.get("content-type"))
        converter = self._converter
        hold = Hold(self._unauthenticated or self._memory)
        converted = acknowledged = False
        try:
            if converter is None:
                kind = decoder.check_media_type(request.headers.get("content-type"))
            else:
                converter.admit(request)
            if self._unauthenticated is None:
                hold.grow_to(declared_size(request))  # a known sender: what it says it sends
            raw = await read_body(request, self._max_body_bytes, self._body_timeout_s, hold)
            if converter is not None:
                converter.verify(request, raw)
            hold.move_to(self._memory)
            encoding = request.headers.get("content-encoding")
            if converter is not None and not encoding and raw.startswith(_GZIP_MAGIC):
                encoding = "gzip"  # as Logpush sends it, without a Content-Encoding to say so
            body = await decoder.inflate(
                raw,
                encoding,
                self._max_body_bytes,
                lambda size: hold.grow_to(len(raw) + size),
            )
            if converter is None:
                message = decoder.decode(body, kind)
            else:
                # Off the event loop: reading a large delivery, and asking the store which of
                # its lines it holds, take time.
                converted = True
                message = await run_in_threadpool(converter, request, body)
                body, kind = message.SerializeToString(), decoder.PROTOBUF
            translation = screen(message, body if kind == decoder.PROTOBUF else None)
            translation.spans.source = body
            translation.spans.source_kind = KIND_JSON if kind == decoder.JSON else KIND_PROTOBUF
            received = len(translation.spans) + translation.rejected
            self._telemetry.spans_received.inc(received)
            self._telemetry.drop(
                "invalid_span", translation.rejected, translation.rejection_message
            )
            self._consumer.consume(translation.spans)
            if self._before_ack is not None:
                await self._before_ack()
            acknowledged = True
        except PermanentError as exc:
            reason = _REJECT_REASONS.get(exc.http_status, "malformed")
            self._telemetry.reject_request(reason, exc.http_status, str(exc))
            return _status_response(kind, exc.http_status, str(exc))
        except TransientError as exc:
            self._telemetry.reject_request("throttled", 503, str(exc))
            return _status_response(
                kind, 503, str(exc), headers={"Retry-After": str(exc.retry_after_s)}
            )
        finally:
            hold.release()
            if converter is not None and converted:
                converter.finished(request, acknowledged)

        reply = ExportTraceServiceResponse()
        if translation.rejected:
            reply.partial_success.rejected_spans = translation.rejected
            reply.partial_success.error_message = translation.rejection_message
        self._telemetry.requests.labels("200").inc()
        return _message_response(kind, 200, reply)


def _message_response(
    kind: str, status: int, message: Message, headers: dict[str, str] | None = None
) -> Response:
    if kind == decoder.JSON:
        body = json_format.MessageToJson(message, indent=None).encode()
        return Response(body, status, headers=headers, media_type=decoder.JSON)
    return Response(
        message.SerializeToString(), status, headers=headers, media_type=decoder.PROTOBUF
    )


def _status_response(
    kind: str, status: int, text: str, headers: dict[str, str] | None = None
) -> Response:
    # A Status for an unsupported media type is sent as JSON, which a person can read.
    kind = kind if kind in decoder.SUPPORTED_MEDIA_TYPES else decoder.JSON
    # INVALID_ARGUMENT, DEADLINE_EXCEEDED, UNAVAILABLE; UNKNOWN otherwise.
    grpc_code = {400: 3, 408: 4, 413: 3, 415: 3, 503: 14}.get(status, 2)
    return _message_response(kind, status, Status(code=grpc_code, message=text), headers)
