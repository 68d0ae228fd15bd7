-- Server request latency per route and kind, with time to first byte.
SELECT
    SpanAttributes['next.route'] AS route,
    SpanAttributes['nextrace.request.kind'] AS kind,
    count() AS requests,
    round(quantile(0.5)(Duration) / 1e6, 1) AS p50_ms,
    round(quantile(0.95)(Duration) / 1e6, 1) AS p95_ms,
    round(quantile(0.99)(Duration) / 1e6, 1) AS p99_ms,
    round(avg(toFloat64OrZero(SpanAttributes['nextrace.stream.ttfb_ms'])), 1) AS avg_ttfb_ms
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.phase'] = 'request'
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(SpanAttributes['next.route'] IN (${route:singlequote}), $route)
  AND $__conditionalAll(SpanAttributes['nextrace.build_id'] IN (${build:singlequote}), $build)
GROUP BY route, kind
ORDER BY p95_ms DESC, route, kind
