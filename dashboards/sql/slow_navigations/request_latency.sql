-- Server request latency per route and kind, with time to first byte (where it is known).
-- A CDN's log may give no duration (Vercel's never does): its row's is NULL, which quantiles skip.
SELECT
    Route AS route,
    Kind AS kind,
    count() AS requests,
    round(quantileOrNull(0.5)(Duration) / 1e6, 1) AS p50_ms,
    round(quantileOrNull(0.95)(Duration) / 1e6, 1) AS p95_ms,
    round(quantileOrNull(0.99)(Duration) / 1e6, 1) AS p99_ms,
    round(avg(TtfbMs), 1) AS avg_ttfb_ms
FROM requests
WHERE $__timeFilter(Timestamp)
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY route, kind
ORDER BY p95_ms DESC, route, kind
