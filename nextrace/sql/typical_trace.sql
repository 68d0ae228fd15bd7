-- A typical fast trace of the same route and kind as another: among root spans of the same
-- name and service (and navigation type, when it has one), other than {trace_id}, the one
-- at the 25th percentile of their durations (one pass: sorted by duration, then picked). A
-- browser's navigation is looked for among the navigations (lifecycle_spans, sorted by phase);
-- any other root among every span, since only its name and service say what it is.
SELECT
    by_duration[toUInt32(floor((length(by_duration) - 1) * 0.25)) + 1].2 AS trace_id,
    length(by_duration) AS peers
FROM (
    SELECT arraySort(x -> x.1, groupArray((duration_ns, peer))) AS by_duration
    FROM (
        SELECT Duration AS duration_ns, TraceId AS peer
        FROM lifecycle_spans
        WHERE {navigation:Bool} AND Phase = 'navigation' AND IsRoot
          AND ServiceName = {service:String} AND SpanName = {name:String}
          AND ({kind:String} = '' OR Attributes['nextrace.navigation.type'] = {kind:String})
        UNION ALL
        SELECT Duration, TraceId
        FROM otel_traces
        WHERE NOT {navigation:Bool}
          AND ServiceName = {service:String} AND SpanName = {name:String} AND ParentSpanId = ''
    )
    WHERE peer != {trace_id:String}
)
