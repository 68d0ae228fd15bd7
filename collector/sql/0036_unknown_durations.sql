-- A request a CDN logged without a duration (Vercel logs none; Logpush's whole seconds tell
-- none) has none: its Duration is NULL, not 0 ms, which latency queries skip as every aggregate
-- skips NULL. The CDN receivers' spans end where they start when the log says no duration
-- (collector/ingest/cdn.py); only theirs are read so. Rows stored before are corrected.
ALTER TABLE `${database}`.`requests` ${on_cluster} MODIFY COLUMN Duration Nullable(UInt64) CODEC(ZSTD(1));
ALTER TABLE `${database}`.`requests` ${on_cluster} UPDATE Duration = NULL WHERE Source = 'cdn' AND Duration = 0;
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
    if((SpanAttributes['nextrace.source']) = 'cdn' AND Duration = 0, NULL, Duration) AS Duration,
    toFloat64OrNull(SpanAttributes['nextrace.stream.ttfb_ms']) AS TtfbMs,
    CAST(NULL, 'Nullable(Float64)') AS RenderMs,
    CAST(NULL, 'Nullable(Float64)') AS MiddlewareMs,
    SpanAttributes['nextrace.build_id'] AS BuildId,
    if((SpanAttributes['nextrace.source']) != '', SpanAttributes['nextrace.source'], 'nextrace') AS Source,
    toUInt64OrNull(SpanAttributes['http.response.body.size']) AS ResponseBytes,
    SpanAttributes['nextrace.cdn.region'] AS Region
FROM `${database}`.`${table}`
WHERE (SpanAttributes['nextrace.phase']) = 'request'
