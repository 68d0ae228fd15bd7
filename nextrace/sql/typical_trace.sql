-- A typical fast trace of the same route and kind as another: among root spans of the same
-- name and service (and navigation type, when it has one), other than {trace_id}, the one
-- at the 25th percentile of their durations (one pass: sorted by duration, then picked).
SELECT
    by_duration[toUInt32(floor((length(by_duration) - 1) * 0.25)) + 1].2 AS trace_id,
    length(by_duration) AS peers
FROM (
    SELECT arraySort(x -> x.1, groupArray((Duration, TraceId))) AS by_duration
    FROM otel_traces
    WHERE ServiceName = {service:String} AND SpanName = {name:String} AND ParentSpanId = ''
      AND ({kind:String} = '' OR SpanAttributes['nextrace.navigation.type'] = {kind:String})
      AND TraceId != {trace_id:String}
)
