"""Real OTLP bodies made by the OpenTelemetry SDK's own exporter encoding, and ways to damage
them: the corpus of the fuzz test and of bench/trust.py."""

from __future__ import annotations

import base64
import gzip
import json
import random

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def sdk_spans(seed: int, count: int = 20) -> list[ReadableSpan]:
    """Spans made by the SDK as an app would: nested, with attributes, events and links."""
    rng = random.Random(seed)
    keep = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": f"svc{seed % 3}"}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("next.js", "16.0.0")
    with tracer.start_as_current_span("GET /products/[id]", attributes={"http.method": "GET"}):
        for i in range(count - 1):
            with tracer.start_as_current_span(f"fetch {i}") as span:
                span.set_attribute("cache.layer", rng.choice(["data", "cdn", "full_route"]))
                span.set_attribute("n", rng.randrange(10**9))
                span.set_attribute("ratio", rng.random())
                span.set_attribute("tags", ["products", f"product-{i}"])
                span.add_event("retry", {"attempt": i})
                if i % 5 == 0:
                    span.add_link(span.get_span_context(), {"kind": "warmup"})
                if i % 7 == 0:
                    span.set_status(Status(StatusCode.ERROR, "upstream timeout"))
    provider.shutdown()
    return list(keep.get_finished_spans())


def protobuf_body(seed: int) -> bytes:
    return encode_spans(sdk_spans(seed)).SerializeToString()


def json_body(seed: int) -> bytes:
    """OTLP/JSON: as the protobuf JSON mapping, with hex ids as the specification wants."""
    document = json_format.MessageToDict(encode_spans(sdk_spans(seed)))
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for holder in (span, *span.get("links", [])):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in holder:
                            holder[key] = base64.b64decode(holder[key]).hex()
    return json.dumps(document).encode()


def corpus(size: int = 12) -> list[tuple[bytes, dict[str, str]]]:
    """Bodies with their headers: protobuf, JSON, and gzip of each."""
    out: list[tuple[bytes, dict[str, str]]] = []
    for seed in range(size // 4 or 1):
        for body, headers in ((protobuf_body(seed), PROTOBUF), (json_body(seed), JSON)):
            out.append((body, headers))
            out.append((gzip.compress(body), {**headers, "Content-Encoding": "gzip"}))
    return out


def mutate(body: bytes, rng: random.Random) -> bytes:
    """``body`` damaged the ways transports and buggy senders damage things."""
    data = bytearray(body)
    if rng.random() < 0.5:  # one flipped bit: often still decodable, with odd values inside
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        at = rng.randrange(len(data))
        kind = rng.randrange(6)
        if kind == 0:
            data[at] ^= 1 << rng.randrange(8)  # a flipped bit
        elif kind == 1:
            data[at:at] = rng.randbytes(rng.randint(1, 8))  # inserted bytes
        elif kind == 2:
            del data[at : at + rng.randint(1, 16)]  # lost bytes
        elif kind == 3:
            del data[at:]  # truncated
        elif kind == 4:
            data[at:at] = data[at : at + rng.randint(1, 64)] * rng.randint(2, 8)  # repeated
        else:
            data[at:at] = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # a huge varint
    return bytes(data)
