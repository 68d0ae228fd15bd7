"""The recorded runs of examples/nextjs (tests/data/nextjs-runs), loaded for the tests.

    run = load_run("next16-curl")
    for content_type, body in run.bodies(): ...       # POST each to /v1/traces
    for miss in run.blocking_misses(): ...            # (trace_id, path, upstream_ns)

A run holds what a plain OTLP/HTTP receiver got from the app (``raw/``), what the driver sent
(``requests.jsonl``), what the app's upstream logged of every call it received
(``upstream_calls.jsonl``: the truth, independent of any span), the driver's own markers
(``events.jsonl``: starts, deploys, revalidations) and how it was recorded (``run.json``).
tests/examples/record_captures.py records them; tests/data/nextjs-runs/README.md says how.

**The truth.** A request waited on a data-cache miss when the upstream holds a call of the
request's trace, for a path the app fetches through the data cache, answered before the
request's answer ended; its upstream time is that call's ``answered_ns - received_ns``. The
profile page's fetches are uncached (``cache: 'no-store'``): they are waits, not misses
(``uncached_waits``).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

RUNS_DIR = Path(__file__).resolve().parents[1] / "data" / "nextjs-runs"
RUN_NAMES = ("next16-curl", "next15-curl", "next16-chromium")
# Upstream paths the app fetches through Next.js's data cache (the product pages, tagged
# `product-<id>`, and the ISR blog page's post); every other call is an uncached fetch.
DATA_CACHE_PATHS = ("/api/product/", "/api/post/")
TRACES = "/v1/traces"
BROWSER_TRACES = "/v1/browser/traces"


@dataclass(frozen=True)
class Request:
    """A request the driver (curl-like, or Chromium) sent, and what it got."""

    label: str
    method: str
    path: str  # as sent, with its query (``_rsc``)
    headers: dict[str, str]  # as sent (lower-case names for Chromium's)
    t_start_ns: int  # Unix ns
    t_end_ns: int  # when its answer had been read in full (or the browser gave up on it)
    status: str  # the HTTP status, or "failed: <error>" when the browser gave up on it
    response_headers: dict[str, str]
    trace_id: str  # its traceparent's; "" when it was sent without one and nothing names it
    trace_id_from: str  # "traceparent", "upstream" (sent without one: its upstream call's), ""
    kind: str  # document, navigation, prefetch, segment_prefetch, api
    step: str  # the driver's step it was sent in (Chromium: the action that caused it)

    @property
    def route_path(self) -> str:
        """The path without its query: ``/products/1`` for ``/products/1?_rsc=…``."""
        return urlsplit(self.path).path

    @property
    def failed(self) -> bool:
        return self.status.startswith("failed")


@dataclass(frozen=True)
class UpstreamCall:
    """A call the upstream received, from its own log."""

    path: str
    trace_id: str  # from the traceparent it came with; "" without one (the build's)
    received_ns: int
    answered_ns: int | None  # None: never answered

    @property
    def upstream_ns(self) -> int:
        """How long the upstream took to answer it (0 if it never did)."""
        return (self.answered_ns - self.received_ns) if self.answered_ns is not None else 0

    @property
    def data_cache(self) -> bool:
        """Whether the app fetched it through the data cache (else: an uncached fetch)."""
        return self.path.startswith(DATA_CACHE_PATHS)


@dataclass(frozen=True)
class Event:
    """A marker of the driver's: ``start`` (the first server up), ``stop``, ``deploy`` (the
    server up on a new build), ``revalidate``; ``data`` holds every field of its line."""

    kind: str
    t_ns: int
    data: dict[str, Any] = field(default_factory=dict)


class BlockingMiss(NamedTuple):
    """A request that waited on a data-cache miss: its trace, its path (without query), and
    the upstream's own time for the call it waited on."""

    trace_id: str
    path: str
    upstream_ns: int


@dataclass(frozen=True)
class Export:
    """One POST body the receiver got, exactly as it came."""

    file: str
    endpoint: str  # /v1/traces or /v1/browser/traces
    content_type: str
    content_encoding: str  # "" or gzip
    origin: str  # the Origin header (the page's, for browser spans); "" without one
    body: bytes

    def plain(self) -> bytes:
        """The body without its content encoding."""
        return gzip.decompress(self.body) if self.content_encoding == "gzip" else self.body


@dataclass(frozen=True)
class Span:
    """A span of a run, decoded (protobuf or JSON): ids in hex, times in Unix ns."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    scope: str
    service: str
    browser: bool  # sent to the browser endpoint


class Run:
    """One recorded run (see the module's docstring)."""

    def __init__(self, folder: Path) -> None:
        self.name = folder.name
        self.dir = folder
        self.info: dict[str, Any] = json.loads((folder / "run.json").read_text())
        self.requests = [_request(line) for line in _lines(folder / "requests.jsonl")]
        self.upstream_calls = [
            UpstreamCall(
                path=line["path"],
                trace_id=line["trace_id"],
                received_ns=line["received_ns"],
                answered_ns=line["answered_ns"],
            )
            for line in _lines(folder / "upstream_calls.jsonl")
        ]
        self.events = [
            Event(kind=line["kind"], t_ns=line["t_ns"], data=line)
            for line in _lines(folder / "events.jsonl")
        ]

    def exports(self) -> list[Export]:
        """Every body the receiver got, server and browser, in the order they arrived."""
        found = []
        for meta_file in sorted((self.dir / "raw").glob("*.meta.json")):
            meta = json.loads(meta_file.read_text())
            found.append(
                Export(
                    file=meta["file"],
                    endpoint=meta.get("endpoint", TRACES),
                    content_type=meta["content_type"],
                    content_encoding=meta.get("content_encoding", ""),
                    origin=meta.get("origin", ""),
                    body=(self.dir / "raw" / meta["file"]).read_bytes(),
                )
            )
        return found

    def bodies(self) -> list[tuple[str, bytes]]:
        """The server's exports to ``/v1/traces``, in order: (content type, body without
        content encoding). The browser's are ``browser_bodies``."""
        return [(e.content_type, e.plain()) for e in self.exports() if e.endpoint == TRACES]

    def browser_bodies(self) -> list[tuple[str, bytes]]:
        """The pages' exports to ``/v1/browser/traces`` (OTLP/JSON), in order; their Origin
        is ``info["app_origin"]``."""
        exports = self.exports()
        return [(e.content_type, e.plain()) for e in exports if e.endpoint == BROWSER_TRACES]

    @cached_property
    def spans(self) -> list[Span]:
        """Every span of the run, server and browser, decoded."""
        found: list[Span] = []
        for export in self.exports():
            found.extend(_spans(export))
        return found

    def trace_ids(self) -> set[str]:
        return {span.trace_id for span in self.spans}

    def request_of(self, call: UpstreamCall) -> Request | None:
        """The driver's request whose trace the call belongs to, received while it was open."""
        for request in self.requests:
            if (
                request.trace_id
                and request.trace_id == call.trace_id
                and request.t_start_ns - 1_000_000 <= call.received_ns <= request.t_end_ns
            ):
                return request
        return None

    def _waits(self) -> Iterator[tuple[Request, UpstreamCall]]:
        """Each call a request waited on: of its trace, answered before its answer ended."""
        for call in self.upstream_calls:
            request = self.request_of(call)
            if (
                request is not None
                and call.answered_ns is not None
                and call.answered_ns <= request.t_end_ns
            ):
                yield request, call

    def blocking_misses(self) -> list[BlockingMiss]:
        """Every request that waited on a data-cache miss, per the upstream's log, in the
        order the calls were received (one entry per call waited on)."""
        return [
            BlockingMiss(request.trace_id, request.route_path, call.upstream_ns)
            for request, call in self._waits()
            if call.data_cache
        ]

    def uncached_waits(self) -> list[BlockingMiss]:
        """The same for the calls of uncached fetches (the profile page's waterfall)."""
        return [
            BlockingMiss(request.trace_id, request.route_path, call.upstream_ns)
            for request, call in self._waits()
            if not call.data_cache
        ]

    def deploys(self) -> list[Event]:
        return [event for event in self.events if event.kind == "deploy"]


def load_run(name: str) -> Run:
    """The run ``name`` (one of ``RUN_NAMES``) from tests/data/nextjs-runs."""
    folder = RUNS_DIR / name
    if not (folder / "run.json").exists():
        raise FileNotFoundError(f"no recorded run {name!r} in {RUNS_DIR}")
    return Run(folder)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _request(line: dict[str, Any]) -> Request:
    return Request(
        label=line["label"],
        method=line["method"],
        path=line["path"],
        headers=line["req_headers"],
        t_start_ns=line["t_start_ns"],
        t_end_ns=line["t_end_ns"],
        status=line["status"],
        response_headers=line["resp_headers"],
        trace_id=line["trace_id"],
        trace_id_from=line["trace_id_from"],
        kind=line["kind"],
        step=line.get("step", ""),
    )


def _spans(export: Export) -> list[Span]:
    browser = export.endpoint == BROWSER_TRACES
    if "json" in export.content_type:
        document = json.loads(export.plain())
    else:
        from google.protobuf import json_format
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        message = ExportTraceServiceRequest.FromString(export.plain())
        document = json_format.MessageToDict(message)
    is_hex = browser or "json" in export.content_type
    found = []
    for resource_spans in document.get("resourceSpans", []):
        resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope = scope_spans.get("scope", {}).get("name", "")
            for span in scope_spans.get("spans", []):
                found.append(
                    Span(
                        trace_id=_hex(span["traceId"], is_hex),
                        span_id=_hex(span["spanId"], is_hex),
                        parent_span_id=_hex(span.get("parentSpanId", ""), is_hex),
                        name=span["name"],
                        start_ns=int(span["startTimeUnixNano"]),
                        end_ns=int(span["endTimeUnixNano"]),
                        attributes=_attributes(span.get("attributes", [])),
                        scope=scope,
                        service=str(resource.get("service.name", "")),
                        browser=browser,
                    )
                )
    return found


def _hex(value: str, is_hex: bool) -> str:
    """An id as hex: OTLP/JSON writes hex, protobuf's JSON mapping base64."""
    if is_hex or not value:
        return value
    return base64.b64decode(value).hex()


def _attributes(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        value = pair.get("value", {})
        values[pair["key"]] = next(iter(value.values()), None) if value else None
    return values
