-- Every span of the traces {trace_ids}; the trace-id lookup table narrows the time range.
WITH __TRACE_RANGE__
SELECT
    TraceId AS trace_id,
    SpanId AS span_id,
    ParentSpanId AS parent_id,
    ServiceName AS service,
    SpanName AS name,
    toUnixTimestamp64Nano(Timestamp) AS start_ns,
    Duration AS duration_ns,
    StatusCode AS status,
    SpanAttributes AS attributes,
    `Links.TraceId` AS linked_trace_ids
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= range_start AND Timestamp <= range_end
ORDER BY Timestamp
