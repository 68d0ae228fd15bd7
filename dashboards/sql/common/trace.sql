-- One trace for Grafana's trace view, aliased to its data-frame fields as the plugin's
-- trace-id query does (src/data/sqlGenerator.ts generateTraceIdQuery). As the plugin does, the
-- trace's time range comes first from otel_traces_trace_id_ts; its 15-minute buckets are the
-- first column of otel_traces' sort key, so with the trace id (the second) they find the
-- trace's own granule: a plain Timestamp range does not prune the key, and the id alone reads
-- every bucket's granules (bench/results/trace_view.json).
WITH '${trace_id}' AS trace_id,
    (SELECT (min(Start), max(End)) FROM otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_range
SELECT
    TraceId AS traceID,
    SpanId AS spanID,
    ParentSpanId AS parentSpanID,
    ServiceName AS serviceName,
    SpanName AS operationName,
    multiply(toUnixTimestamp64Nano(Timestamp), 0.000001) AS startTime,
    multiply(Duration, 0.000001) AS duration,
    arrayMap((key, value) -> map('key', key, 'value', value),
             mapKeys(SpanAttributes), mapValues(SpanAttributes)) AS tags,
    arrayMap((key, value) -> map('key', key, 'value', value),
             mapKeys(ResourceAttributes), mapValues(ResourceAttributes)) AS serviceTags,
    if(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) AS statusCode
FROM otel_traces
WHERE TraceId = trace_id
  AND toStartOfFifteenMinutes(Timestamp)
      BETWEEN toStartOfFifteenMinutes(trace_range.1) AND toStartOfFifteenMinutes(trace_range.2)
ORDER BY startTime
