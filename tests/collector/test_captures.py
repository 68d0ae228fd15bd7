"""Real Next.js 16 exports (shared/nextjs-captures) are stored exactly, span for span."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import stored

RUNS = ["run-b_protobuf_verbose_both", "run-c_json_verbose_both", "run-d_protobuf_default_both"]


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


@pytest.mark.parametrize("run_name", RUNS)
def test_each_capture_is_stored_exactly(captures, client, collector, run_name):
    run = captures / run_name
    post_capture(client, run)
    expected = expected_spans(run)
    rows = stored(
        collector,
        "SELECT TraceId, SpanId, ParentSpanId, SpanName, Duration, length(Events.Name), "
        "length(SpanAttributes) FROM otel_traces",
    )
    assert len(rows) == len(expected)
    by_id = {(r[0], r[1]): r for r in rows}
    assert set(by_id) == set(expected)
    for key, span in expected.items():
        _trace_id, _span_id, parent, name, duration, n_events, n_attrs = by_id[key]
        assert parent == span.get("parentSpanId", ""), key
        assert name == span["name"]
        assert duration == int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])
        assert n_events == len(span.get("events", []))
        assert n_attrs == len(span.get("attributes", []))
    health = collector.health()
    assert health["spans_exported"] == len(expected)
    assert sum(health["spans_dropped"].values()) == 0


def test_spans_from_the_json_capture_keep_every_field(captures, client, collector):
    post_capture(client, captures / "run-c_json_verbose_both")
    # A span with an exception event, and the request span that answered 404.
    (event_row,) = stored(
        collector,
        "SELECT SpanName, Events.Name, Events.Attributes[1]['exception.type'], "
        "toUnixTimestamp64Nano(Events.Timestamp[1]), ServiceName, ResourceAttributes, "
        "ScopeName, ScopeVersion, SpanKind, StatusCode "
        "FROM otel_traces WHERE SpanId = '94f3d0a6bcadac0b'",
    )
    raw = json.loads((captures / "run-c_json_verbose_both/raw/00001_traces.json").read_text())
    spans = {
        s["spanId"]: s
        for rs in raw["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    }
    event = spans["94f3d0a6bcadac0b"]["events"][0]
    assert event_row[0] == "LoadComponents.loadComponents"
    assert event_row[1] == ["exception"]
    assert event_row[2] == "ENOENT"
    assert event_row[3] == int(event["timeUnixNano"])
    assert event_row[4] == "next-probe"
    assert event_row[5] == {
        "service.name": "next-probe",
        "node.env": "production",
        "cloud.provider": "vercel",
        "process.runtime.name": "nodejs",
        "vercel.runtime": "nodejs",
    }
    assert event_row[6:8] == ("next.js", "16.4.6")
    assert event_row[8] == "Internal"
    assert spans["94f3d0a6bcadac0b"]["status"]["code"] == 2
    assert event_row[9] == "Error"
    # Non-string attributes are stored as the contrib exporter stores them.
    (attrs,) = stored(
        collector, "SELECT SpanAttributes FROM otel_traces WHERE SpanId = 'f5fb0904803b9cee'"
    )
    assert attrs[0]["http.status_code"] == "404"
    assert attrs[0]["next.rsc"] == "false"
    # Traces are found through the lookup table Grafana's trace view uses.
    (lookup,) = stored(
        collector,
        "SELECT count() FROM otel_traces_trace_id_ts WHERE TraceId IN "
        "(SELECT TraceId FROM otel_traces WHERE SpanId = '94f3d0a6bcadac0b')",
    )
    assert lookup[0] >= 1
