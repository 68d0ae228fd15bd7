"""Real Next.js 16 exports (tests/data/nextjs-captures) are stored exactly, span for span."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import stored
from tests.support.captures import RUNS, expected_spans, post_capture


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


def raw_json_spans(run: Path) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(resource, scope, span) of every span of a JSON capture, in order."""
    found = []
    for path in sorted((run / "raw").glob("*_traces.json")):
        for rs in json.loads(path.read_text())["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                found += [(rs["resource"], ss["scope"], span) for span in ss["spans"]]
    return found


def value_of(attribute: dict[str, Any]) -> Any:
    (value,) = attribute["value"].values()
    return value


def test_spans_from_the_json_capture_keep_every_field(captures, client, collector):
    run = captures / "json-verbose"
    post_capture(client, run)
    spans = raw_json_spans(run)
    # The first span with an exception event (Next.js records one for a missing module).
    resource, scope, failed = next(s for s in spans if s[2].get("events"))
    event = failed["events"][0]
    (row,) = stored(
        collector,
        "SELECT SpanName, Events.Name, Events.Attributes[1]['exception.type'], "
        "toUnixTimestamp64Nano(Events.Timestamp[1]), ServiceName, ResourceAttributes, "
        "ScopeName, ScopeVersion, SpanKind, StatusCode, StatusMessage "
        f"FROM otel_traces WHERE SpanId = '{failed['spanId']}'",
    )
    event_attributes = {a["key"]: value_of(a) for a in event["attributes"]}
    assert row[0] == failed["name"]
    assert row[1] == [event["name"]] == ["exception"]
    assert row[2] == event_attributes["exception.type"]
    assert row[3] == int(event["timeUnixNano"])
    resource_attributes = {a["key"]: value_of(a) for a in resource["attributes"]}
    assert row[4] == resource_attributes["service.name"] == "nextjs-example"
    assert row[5] == resource_attributes
    assert row[6:8] == (scope["name"], scope["version"]) == ("next.js", scope["version"])
    assert row[8] == ("Internal", "Server", "Client")[failed["kind"] - 1]
    assert failed["status"]["code"] == 2
    assert row[9:11] == ("Error", failed["status"]["message"])
    # Non-string attributes are stored as the contrib exporter stores them.
    not_found = next(
        span
        for _, _, span in spans
        if any(
            a["key"] == "http.status_code" and a["value"].get("intValue") in (404, "404")
            for a in span.get("attributes", [])
        )
    )
    (attrs,) = stored(
        collector, f"SELECT SpanAttributes FROM otel_traces WHERE SpanId = '{not_found['spanId']}'"
    )
    assert attrs[0]["http.status_code"] == "404"
    assert attrs[0]["next.rsc"] == "false"
    # Traces are found through the lookup table Grafana's trace view uses.
    (lookup,) = stored(
        collector,
        f"SELECT count() FROM otel_traces_trace_id_ts WHERE TraceId = '{failed['traceId']}'",
    )
    assert lookup[0] >= 1
