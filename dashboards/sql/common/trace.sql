-- One trace for Grafana's trace view, aliased to its data-frame fields as the plugin's
-- trace-id query does (src/data/sqlGenerator.ts generateTraceIdQuery). The plugin first looks
-- the trace's time range up in otel_traces_trace_id_ts; here the sort key (15-minute bucket,
-- then trace id) finds the trace's granules by its id alone, in each part's in-memory index,
-- and the lookup would cost more than it saves (bench/results/queries-10M.json).
WITH '${trace_id}' AS trace_id
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
ORDER BY startTime
