-- Every span of the traces {trace_ids}; the trace-id lookup table narrows the time range.
WITH __TRACE_RANGE__
SELECT __SPAN_COLUMNS__
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= range_start AND Timestamp <= range_end
ORDER BY Timestamp
