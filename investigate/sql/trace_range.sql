-- The time range of the traces {trace_ids}, from the trace-id lookup table: included by the
-- queries that read those traces, to narrow each table they read.
(SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId IN {trace_ids:Array(String)})
    AS range_start,
(SELECT max(End) + 1 FROM otel_traces_trace_id_ts WHERE TraceId IN {trace_ids:Array(String)})
    AS range_end
