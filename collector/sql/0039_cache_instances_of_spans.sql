-- Cache lookups that spans say themselves (cache.layer: the reference server's, a CDN's, a
-- browser's) carry their instance too: the span's resource's service.instance.id, the
-- instance that stored the entry it found (cache.entry.source_instance) and a 'use cache'
-- function's name (nextrace.cache.function), as the collector derives them for a real Next.js
-- app's cache handlers (0038).
DROP VIEW IF EXISTS `${database}`.`cache_events_mv` ${on_cluster};
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
    (SpanAttributes['nextrace.warmup.pending']) = 'true' AS WarmupPending,
    SpanAttributes['nextrace.build_id'] AS BuildId,
    SpanAttributes['nextrace.cdn.region'] AS Region,
    ResourceAttributes['service.instance.id'] AS Instance,
    SpanAttributes['cache.entry.source_instance'] AS EntrySourceInstance,
    SpanAttributes['nextrace.cache.function'] AS Function
FROM `${database}`.`${table}`
WHERE (SpanAttributes['cache.layer']) != ''
