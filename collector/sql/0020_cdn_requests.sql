-- Requests a CDN answered without the app (collector/ingest/cdn.py) are request spans that say where
-- they come from (nextrace.source = cdn) and how their kind was known (from the logged path).
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
    if(SpanAttributes['nextrace.request.kind_source'] != '', SpanAttributes['nextrace.request.kind_source'], 'attribute') AS KindSource,
    SpanAttributes['next.prefetch'] AS Prefetch,
    SpanAttributes['http.request.method'] AS Method,
    SpanAttributes['url.path'] AS Path,
    toUInt16OrZero(SpanAttributes['http.response.status_code']) AS StatusCode,
    Duration,
    toFloat64OrNull(SpanAttributes['nextrace.stream.ttfb_ms']) AS TtfbMs,
    CAST(NULL, 'Nullable(Float64)') AS RenderMs,
    CAST(NULL, 'Nullable(Float64)') AS MiddlewareMs,
    SpanAttributes['nextrace.build_id'] AS BuildId,
    if(SpanAttributes['nextrace.source'] != '', SpanAttributes['nextrace.source'], 'nextrace') AS Source,
    toUInt64OrNull(SpanAttributes['http.response.body.size']) AS ResponseBytes
FROM `${database}`.`${table}`
WHERE SpanAttributes['nextrace.phase'] = 'request'
