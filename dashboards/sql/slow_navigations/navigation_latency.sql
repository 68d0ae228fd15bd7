-- Navigation latency per route, from click to last streamed chunk (browser navigation spans).
SELECT
    Route AS route,
    count() AS navigations,
    round(quantile(0.5)(Duration) / 1e6, 1) AS p50_ms,
    round(quantile(0.95)(Duration) / 1e6, 1) AS p95_ms,
    round(quantile(0.99)(Duration) / 1e6, 1) AS p99_ms
FROM lifecycle_spans
WHERE $__timeFilter(Timestamp)
  AND Phase = 'navigation'
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
GROUP BY route
ORDER BY p95_ms DESC, route
