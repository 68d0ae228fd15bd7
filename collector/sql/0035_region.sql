-- The region of the CDN's edge that answered a request it logged (Vercel's proxy.region,
-- Cloudflare's EdgeColoCode: nextrace.cdn.region on its spans, collector/ingest/cdn.py), as a
-- column of the rows a CDN's log makes, so that panels and queries can group and filter by it.
-- Empty for a request the CDN did not log.
ALTER TABLE `${database}`.`requests` ${on_cluster} ADD COLUMN IF NOT EXISTS Region LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE `${database}`.`cache_events` ${on_cluster} ADD COLUMN IF NOT EXISTS Region LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
DROP VIEW IF EXISTS `${database}`.`requests_mv` ${on_cluster};
CREATE MATERIALIZED VIEW IF NOT EXISTS `${database}`.`requests_mv` ${on_cluster}
TO `${database}`.`requests`
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['next.route'] AS Route,
    SpanAttributes['nextrace.request.kind'] AS Kind,
    if((SpanAttributes['nextrace.request.kind_source']) != '', SpanAttributes['nextrace.request.kind_source'], 'attribute') AS KindSource,
    SpanAttributes['next.prefetch'] AS Prefetch,
    SpanAttributes['http.request.method'] AS Method,
    SpanAttributes['url.path'] AS Path,
    toUInt16OrZero(SpanAttributes['http.response.status_code']) AS StatusCode,
    Duration,
    toFloat64OrNull(SpanAttributes['nextrace.stream.ttfb_ms']) AS TtfbMs,
    CAST(NULL, 'Nullable(Float64)') AS RenderMs,
    CAST(NULL, 'Nullable(Float64)') AS MiddlewareMs,
    SpanAttributes['nextrace.build_id'] AS BuildId,
    if((SpanAttributes['nextrace.source']) != '', SpanAttributes['nextrace.source'], 'nextrace') AS Source,
    toUInt64OrNull(SpanAttributes['http.response.body.size']) AS ResponseBytes,
    SpanAttributes['nextrace.cdn.region'] AS Region
FROM `${database}`.`${table}`
WHERE (SpanAttributes['nextrace.phase']) = 'request';
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
    SpanAttributes['nextrace.cdn.region'] AS Region
FROM `${database}`.`${table}`
WHERE (SpanAttributes['cache.layer']) != ''
