-- The reference server's request spans (docs/semantic-conventions.md) become requests rows.
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
    'nextrace' AS Source
FROM `${database}`.`${table}`
WHERE SpanAttributes['nextrace.phase'] = 'request'
