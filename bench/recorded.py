"""Real Next.js traces for benchmarks: the export requests recorded from examples/nextjs.

``tests/data/nextjs-captures/protobuf-default`` holds every OTLP/HTTP body a real Next.js 16
app (``@vercel/otel``'s default setup) sent while the example's end-to-end scenario ran:
documents, navigations, prefetches, API calls, revalidations and warm-ups, with a trace often
split over two exports. :func:`recorded_requests` repeats that recording, each copy with
fresh trace and span ids and moved in time, so a benchmark sends as many spans as it wants of
the shape and mix a real app sends.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

RECORDING = Path(__file__).parents[1] / "tests/data/nextjs-captures/protobuf-default/raw"


def recorded_requests(
    spans: int, *, scope: str | None = None, seed: int = 7, folder: Path = RECORDING
) -> list[ExportTraceServiceRequest]:
    """Copies of the recorded export requests until they hold at least ``spans`` spans, the
    last copy ending now. With ``scope``, every span's scope is renamed to it: the same spans,
    which the collector then stores without normalizing them."""
    recording = [
        ExportTraceServiceRequest.FromString(path.read_bytes())
        for path in sorted(folder.glob("*_traces.pb"))
    ]
    return copies(recording, spans, scope=scope, seed=seed)


def copies(
    recording: list[ExportTraceServiceRequest],
    spans: int,
    *,
    scope: str | None = None,
    seed: int = 7,
) -> list[ExportTraceServiceRequest]:
    """Copies of ``recording``, each with fresh trace and span ids and moved in time, one
    after the other, until they hold at least ``spans`` spans, the last copy ending now; with
    ``scope``, every span's scope renamed to it."""
    recorded = [
        span
        for request in recording
        for resource in request.resource_spans
        for scoped in resource.scope_spans
        for span in scoped.spans
    ]
    first = min(span.start_time_unix_nano for span in recorded)
    length = max(span.end_time_unix_nano for span in recorded) - first
    count = math.ceil(spans / len(recorded))
    rng = random.Random(seed)
    now = time.time_ns()
    requests = []
    for copy in range(count):
        shift = now - (count - copy) * length - first
        fresh: dict[bytes, bytes] = {b"": b""}  # recorded id -> this copy's (none stays none)
        for template in recording:
            request = ExportTraceServiceRequest()
            request.CopyFrom(template)
            for resource in request.resource_spans:
                for scoped in resource.scope_spans:
                    if scope is not None:
                        scoped.scope.name = scope
                    for span in scoped.spans:
                        span.trace_id = _renamed(span.trace_id, fresh, rng)
                        span.span_id = _renamed(span.span_id, fresh, rng)
                        span.parent_span_id = _renamed(span.parent_span_id, fresh, rng)
                        span.start_time_unix_nano += shift
                        span.end_time_unix_nano += shift
            requests.append(request)
    return requests


def _renamed(old: bytes, fresh: dict[bytes, bytes], rng: random.Random) -> bytes:
    if old not in fresh:
        fresh[old] = rng.randbytes(len(old))
    return fresh[old]
