-- The size of each response body (http.response.body.size on the request span: the reference
-- server's, and a real Next.js app's with @nextrace/next), for prefetch payload sizes.
ALTER TABLE `${database}`.`requests` ${on_cluster} ADD COLUMN IF NOT EXISTS ResponseBytes Nullable(UInt64) CODEC(ZSTD(1));
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
    'attribute' AS KindSource,
    SpanAttributes['next.prefetch'] AS Prefetch,
    SpanAttributes['http.request.method'] AS Method,
    SpanAttributes['url.path'] AS Path,
    toUInt16OrZero(SpanAttributes['http.response.status_code']) AS StatusCode,
    Duration,
    toFloat64OrNull(SpanAttributes['nextrace.stream.ttfb_ms']) AS TtfbMs,
    CAST(NULL, 'Nullable(Float64)') AS RenderMs,
    CAST(NULL, 'Nullable(Float64)') AS MiddlewareMs,
    SpanAttributes['nextrace.build_id'] AS BuildId,
    'nextrace' AS Source,
    toUInt64OrNull(SpanAttributes['http.response.body.size']) AS ResponseBytes
FROM `${database}`.`${table}`
WHERE SpanAttributes['nextrace.phase'] = 'request'
