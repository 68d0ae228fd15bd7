-- The slowest navigations, and where their time went on the server.
WITH slowest AS (
    SELECT TraceId, SpanName, Duration, SpanAttributes['nextrace.navigation.router_cache'] AS router,
           SpanAttributes['nextrace.navigation.type'] AS type
    FROM otel_traces
    WHERE ServiceName = {browser_service:String} AND SpanAttributes['nextrace.phase'] = 'navigation'
    ORDER BY Duration DESC
    LIMIT {limit:UInt32}
)
SELECT
    s.TraceId AS trace_id,
    any(s.SpanName) AS navigation,
    any(s.Duration) / 1e6 AS total_ms,
    any(s.router) AS router_cache,
    any(s.type) AS type,
    maxIf(toFloat64OrZero(t.SpanAttributes['nextrace.stream.ttfb_ms']),
          t.SpanAttributes['nextrace.phase'] = 'request') AS ttfb_ms,
    sumIf(t.Duration, t.SpanAttributes['nextrace.phase'] = 'middleware') / 1e6 AS middleware_ms,
    maxIf(t.Duration, t.SpanAttributes['nextrace.phase'] = 'render') / 1e6 AS render_ms,
    maxIf(t.Duration, t.SpanAttributes['nextrace.phase'] = 'fetch') / 1e6 AS slowest_fetch_ms,
    argMaxIf(t.SpanName, t.Duration, t.SpanAttributes['nextrace.phase'] = 'fetch') AS slowest_fetch,
    uniqExactIf(t.SpanName, t.SpanAttributes['nextrace.fetch.after'] != '') AS sequential_fetches,
    countIf(t.SpanAttributes['cache.layer'] = 'data' AND t.SpanAttributes['cache.result'] = 'miss')
        AS data_misses
FROM slowest AS s
LEFT JOIN otel_traces AS t ON t.TraceId = s.TraceId
GROUP BY s.TraceId
ORDER BY total_ms DESC
