-- The time range of the traces {trace_ids}, from the trace-id lookup table (one lookup):
-- included by the queries that read those traces, to narrow each table they read.
(SELECT (min(Start), max(End) + 1) FROM otel_traces_trace_id_ts
    WHERE TraceId IN {trace_ids:Array(String)}) AS trace_range,
trace_range.1 AS range_start,
trace_range.2 AS range_end
