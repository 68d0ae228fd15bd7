-- Spans with a cache.layer (docs/semantic-conventions.md) become cache_events rows.
CREATE MATERIALIZED VIEW IF NOT EXISTS `${database}`.`cache_events_mv` ${on_cluster}
TO `${database}`.`cache_events`
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['next.route'] AS Route,
    SpanAttributes['cache.layer'] AS Layer,
    SpanAttributes['cache.result'] AS Result,
    SpanAttributes['cache.miss_reason'] AS Reason,
    SpanAttributes['cache.key'] AS Key,
    JSONExtract(SpanAttributes['cache.tags'], 'Array(String)') AS Tags,
    SpanAttributes['cache.scope'] AS Scope,
    toFloat64OrZero(SpanAttributes['cache.entry.age_ms']) AS EntryAgeMs,
    SpanAttributes['cache.entry.source'] AS EntrySource,
    SpanAttributes['cache.entry.source_trace_id'] AS EntrySourceTraceId,
    SpanAttributes['nextrace.warmup.pending'] = 'true' AS WarmupPending,
    SpanAttributes['nextrace.build_id'] AS BuildId
FROM `${database}`.`${table}`
WHERE SpanAttributes['cache.layer'] != ''
