"""The recorded Next.js runs (``tests/data/nextjs-captures``): their names, posting their
exports to a collector, and what each run's spans and data-cache lookups should be."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

RUNS = ["protobuf-verbose", "json-verbose", "protobuf-default", "next15-protobuf-default"]


def post_capture(client, run: Path) -> None:
    for meta_file in sorted((run / "raw").glob("*.meta.json")):
        meta = json.loads(meta_file.read_text())
        body = (run / "raw" / meta["file"]).read_bytes()
        headers = {"Content-Type": meta["content_type"]}
        if meta.get("content_encoding"):
            headers["Content-Encoding"] = meta["content_encoding"]
        response = client.post("/v1/traces", content=body, headers=headers)
        assert response.status_code == 200, (meta_file.name, response.content)


def expected_spans(run: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Every span of a capture, read straight from its files (JSON as JSON)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    spans: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((run / "raw").iterdir()):
        if path.name.endswith(".meta.json"):
            continue
        if path.suffix == ".pb":
            message = ExportTraceServiceRequest.FromString(path.read_bytes())
            document = json_format.MessageToDict(message)
            for rs in document.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        for key in ("traceId", "spanId", "parentSpanId"):
                            if key in span:
                                span[key] = base64.b64decode(span[key]).hex()
        else:
            document = json.loads(path.read_text())
        for rs in document.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    spans[(span["traceId"], span["spanId"])] = span
    return spans


# The data cache of each request that fetched, as the capture's labels say (the same in every
# run): first reads miss, repeated reads hit, a revalidateTag(…, 'max') makes the next read
# stale with a background refresh, and one with { expire: 0 } makes it a blocking miss.
DATA_CACHE = {
    "html_product1_first(data-cache miss)": ["miss"],
    "html_product1_second(data-cache hit)": ["hit"],
    "rsc_nav_product2_first": ["miss"],
    "rsc_nav_product1(data-cache hit)": ["hit"],
    "html_product1_after_revalidate_max(stale+bg refresh?)": ["stale"],
    "html_product1_after_revalidate_max_again": ["hit"],
    "html_product1_after_revalidate_expire0(blocking miss?)": ["miss"],
    "html_product2_with_incoming_traceparent": ["hit"],
}


# Next.js 15's revalidateTag has no profile: 'max' expires the tag at once, like { expire: 0 }.
DATA_CACHE_NEXT15 = {
    **DATA_CACHE,
    "html_product1_after_revalidate_max(stale+bg refresh?)": ["miss"],
}


def requests_of(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "requests.jsonl").read_text().splitlines()]
