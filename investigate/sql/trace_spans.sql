-- Every span of the traces {trace_ids}. The trace-id lookup table gives their time range; its
-- 15-minute buckets, the first column of otel_traces' sort key, with the ids (the second)
-- find the traces' own granules (a Timestamp range alone does not prune the key).
WITH __TRACE_RANGE__
SELECT __SPAN_COLUMNS__
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND toStartOfFifteenMinutes(Timestamp)
      BETWEEN toStartOfFifteenMinutes(range_start) AND toStartOfFifteenMinutes(range_end)
  AND Timestamp >= range_start AND Timestamp <= range_end
ORDER BY Timestamp
