"""Cloudflare Logpush receiver: ``POST /v1/cdn/cloudflare``, the requests Cloudflare logged.

Off unless ``NEXTRACE_CLOUDFLARE_LOGPUSH_TOKEN`` holds a token. Logpush leaves the
authentication of an HTTP destination to its owner, and sets request headers from the
destination URL's ``header_*`` parameters, so the job's destination carries the token::

    https://collector.example.com/v1/cdn/cloudflare?service=shop&header_Authorization=Bearer%20<token>

A delivery without ``Authorization: Bearer <token>`` is refused with 401 before its body is
read, and nothing of it is kept; the collector's own token is neither asked nor accepted
here. ``?service=`` names the app's service (the one its spans carry), so that the CDN's
rows sit with the app's; without it, the zone's name.

Logpush sends the ``http_requests`` dataset as gzip-compressed NDJSON, one request a line,
with the fields the job lists (and, for a job's custom fields, the ``RequestHeaders`` it was
told to log). :func:`request_of` reads ``ClientRequestMethod``, ``ClientRequestHost``,
``ClientRequestURI``, ``EdgeResponseStatus``, ``CacheCacheStatus``, ``EdgeStartTimestamp``
and ``EdgeEndTimestamp`` (RFC 3339, Unix seconds or nanoseconds, as the job's
``timestamp_format`` says), and, if logged, ``RayID``, ``ZoneName``, ``ClientRequestPath``
(the route of the CDN's rows), ``EdgeColoCode`` (their region), ``EdgeResponseBodyBytes`` (the
body's size; ``EdgeResponseBytes`` counts the headers too), ``EdgeTimeToFirstByteMs`` (a
served request's TTFB), ``OriginResponseDurationMs`` (the origin's time, on the lookup span)
and ``RequestHeaders`` (``rsc``, ``next-router-prefetch``,
``next-router-segment-prefetch``, ``purpose``, and ``traceparent``, which joins the CDN's
spans to the app's trace). A line without a method and a URI (the test line Logpush sends
to check a destination) is skipped; one that is not a JSON object, or whose fields are
missing or of the wrong type, is counted as ``malformed_log_line`` and skipped, and the rest is
stored; a delivery none of whose lines can be read is refused with 400. A Worker's subrequest
and the request that ran the Worker are one request (:func:`one_per_request`).
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.requests import Request
from starlette.routing import Route

from collector.errors import PermanentError
from collector.ingest.cdn import CdnRequest, LineReader
from collector.ingest.connections import admit
from collector.ingest.receiver import OTLPHttpReceiver

CLOUDFLARE_LOGPUSH_PATH = "/v1/cdn/cloudflare"
CLOUDFLARE_TOKEN_ENV = "NEXTRACE_CLOUDFLARE_LOGPUSH_TOKEN"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def nanoseconds(value: Any) -> int:
    """A Logpush timestamp in Unix nanoseconds: RFC 3339 text, or Unix seconds or
    nanoseconds (``timestamp_format`` ``rfc3339``, ``unix``, ``unixnano``)."""
    if isinstance(value, str):
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return (moment - _EPOCH) // dt.timedelta(microseconds=1) * 1000  # exact, unlike floats
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"timestamp {value!r} is neither RFC 3339 nor a positive number")
    # Seconds (1.8e9 now), milliseconds (1.8e12), microseconds (1.8e15) or nanoseconds.
    for limit, scale in ((1e11, 1_000_000_000), (1e14, 1_000_000), (1e17, 1_000)):
        if value < limit:
            return int(value * scale)
    if value >= 1 << 63:
        raise ValueError(f"timestamp {value!r} is beyond any date")
    return int(value)


def _finer_than_seconds(value: Any) -> bool:
    """Whether a Logpush timestamp has a fraction of a second: RFC 3339 text with one, or a
    number in milliseconds or finer."""
    if isinstance(value, str):
        return "." in value
    if isinstance(value, float) and not value.is_integer():
        return True
    return isinstance(value, int | float) and value >= 1e11


def _milliseconds(value: Any) -> int | None:
    """A Logpush timing field in whole milliseconds; None when absent, or 0 (the edge logs 0
    for a step it did not take, such as asking the origin on a hit)."""
    if value is None:
        return None
    ms = int(value)
    return ms if ms > 0 else None


def one_per_request(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line a request: a Worker's subrequest (``WorkerSubrequest``, its ``ParentRayID``
    the eyeball request's ``RayID``) is part of the request that ran the Worker, and its cache
    status is the CDN's answer to it; the eyeball's line stands for both. A subrequest whose
    eyeball line is not in the delivery stays a line of its own."""
    rays = {str(entry["RayID"]) for entry in entries if entry.get("RayID")}
    answers: dict[str, Any] = {}  # eyeball RayID -> its subrequest's CacheCacheStatus
    kept = []
    for entry in entries:
        parent = str(entry.get("ParentRayID") or "")
        if entry.get("WorkerSubrequest") is True and parent in rays:
            answers.setdefault(parent, entry.get("CacheCacheStatus"))
        else:
            kept.append(entry)
    return [
        {**entry, "CacheCacheStatus": answers[ray]}
        if (ray := str(entry.get("RayID") or "")) in answers and answers[ray]
        else entry
        for entry in kept
    ]


def request_of(entry: dict[str, Any], service: str = "") -> CdnRequest | None:
    """The request an ``http_requests`` line logged; None for a line that logged none."""
    method, uri = entry.get("ClientRequestMethod"), entry.get("ClientRequestURI")
    if not method or not uri:
        return None
    headers = entry.get("RequestHeaders") or {}
    if not isinstance(headers, dict):
        raise TypeError("RequestHeaders is not an object")
    headers = {str(name).lower(): str(value) for name, value in headers.items()}
    start = nanoseconds(entry["EdgeStartTimestamp"])
    end = nanoseconds(entry.get("EdgeEndTimestamp", entry["EdgeStartTimestamp"]))
    if not any(
        _finer_than_seconds(entry.get(f)) for f in ("EdgeStartTimestamp", "EdgeEndTimestamp")
    ):
        end = start  # whole seconds (unix, rfc3339) say no duration: 0, unknown
    trace_id, parent = "", ""
    parts = headers.get("traceparent", "").split("-")
    if len(parts) == 4:
        trace_id, parent = parts[1], parts[2]
    size = entry.get("EdgeResponseBodyBytes")  # EdgeResponseBytes counts the headers too
    zone = str(entry.get("ZoneName") or "")
    return CdnRequest(
        vendor="cloudflare",
        log_id=str(entry.get("RayID") or f"{start}:{uri}"),
        service=service or zone or str(entry.get("ClientRequestHost") or "cloudflare"),
        timestamp_ns=start,
        duration_ns=max(0, end - start),
        method=str(method),
        host=str(entry.get("ClientRequestHost") or zone),
        path=str(uri),
        route=str(entry.get("ClientRequestPath") or str(uri).partition("?")[0]),
        status=int(entry.get("EdgeResponseStatus") or 0),
        cache_status=str(entry.get("CacheCacheStatus") or "unknown"),
        region=str(entry.get("EdgeColoCode") or ""),
        response_bytes=int(size) if size is not None else None,
        ttfb_ms=_milliseconds(entry.get("EdgeTimeToFirstByteMs")),
        origin_ms=_milliseconds(entry.get("OriginResponseDurationMs")),
        trace_id=trace_id,
        parent_span_id=parent,
        headers=headers,
    )


class LogpushConverter:
    """Checks a delivery's token and reads its requests as an OTLP export (a
    :data:`collector.ingest.receiver.LogConverter`)."""

    def __init__(self, token: str, lines: LineReader) -> None:
        self._expected = f"Bearer {token}".encode()
        self._lines = lines

    def admit(self, request: Request) -> None:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, self._expected):
            raise PermanentError("missing or wrong Authorization: Bearer token", 401)
        admit(request.scope)

    def verify(self, _request: Request, _raw: bytes) -> None:
        """Nothing to check in the body: its token was checked before it was read."""

    def __call__(self, request: Request, body: bytes) -> ExportTraceServiceRequest:
        # A gzip body without a Content-Encoding, as Logpush sends it, the receiver inflates.
        service = request.query_params.get("service", "")
        return self._lines.read(
            request, body, lambda entry: request_of(entry, service), one_per_request
        )

    def finished(self, request: Request, acknowledged: bool) -> None:
        self._lines.finished(request, acknowledged)


def routes(receiver: OTLPHttpReceiver) -> list[Route]:
    """``POST /v1/cdn/cloudflare``, read by ``receiver`` (one with a
    :class:`LogpushConverter`)."""
    return [Route(CLOUDFLARE_LOGPUSH_PATH, receiver.export, methods=["POST"])]
