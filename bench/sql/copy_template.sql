-- Copies {first} to {first} + {count} - 1 of the template spans (bench_template, the demo's
-- deploy scenario), copy c shifted to {start_ns} + c * {spacing_ns}: fresh trace and span ids
-- (random-looking hex, as real ids are), links and the warm-up trace ids that cache entries
-- name remapped to the copy's own, and a new set of build ids every 64 copies. Inserted into
-- otel_traces, so the store's materialized views fill the derived tables as for real traffic.
INSERT INTO otel_traces (
    Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode,
    StatusMessage, `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`,
    `Links.SpanId`, `Links.TraceState`, `Links.Attributes`
)
WITH
    copies.number AS copy,
    toInt64({start_ns:Int64} + copy * {spacing_ns:UInt64} - {template_start_ns:Int64}) AS shift_ns,
    (t -> if(t = '', '', leftPad(lower(hex(cityHash64(t, copy))), 16, '0')
                       || leftPad(lower(hex(cityHash64(copy, t))), 16, '0')))
        AS fresh_trace,
    (s -> if(s = '', '', leftPad(lower(hex(cityHash64(s, copy))), 16, '0'))) AS fresh_span
SELECT
    fromUnixTimestamp64Nano(toUnixTimestamp64Nano(Timestamp) + shift_ns),
    fresh_trace(TraceId),
    fresh_span(SpanId),
    fresh_span(ParentSpanId),
    TraceState, SpanName, SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion,
    mapApply(
        (k, v) -> (k, multiIf(
            k = 'cache.entry.source_trace_id', fresh_trace(v),
            k IN ('nextrace.build_id', 'nextrace.deploy.previous_build_id') AND v != '', concat(v, '.', toString(intDiv(copy, 64))),
            v)),
        SpanAttributes),
    Duration, StatusCode, StatusMessage,
    arrayMap(t -> fromUnixTimestamp64Nano(toUnixTimestamp64Nano(t) + shift_ns), `Events.Timestamp`),
    `Events.Name`, `Events.Attributes`,
    arrayMap(t -> fresh_trace(t), `Links.TraceId`),
    arrayMap(s -> fresh_span(s), `Links.SpanId`),
    `Links.TraceState`, `Links.Attributes`
FROM bench_template, numbers({first:UInt64}, {count:UInt64}) AS copies
SETTINGS max_insert_threads = 2
