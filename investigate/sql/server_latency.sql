-- Request latency per route and kind, from `requests` (start to the end of the response), in
-- ms: p50 = median, p95 and p99 = the slowest 5% and 1% start above these.
-- A CDN's log may give no duration (Vercel's never does): its row's is NULL, which quantiles skip.
SELECT
    Route AS route,
    Kind AS kind,
    count() AS requests,
    quantileExactOrNull(0.5)(Duration) / 1e6 AS p50_ms,
    quantileExactOrNull(0.95)(Duration) / 1e6 AS p95_ms,
    quantileExactOrNull(0.99)(Duration) / 1e6 AS p99_ms
FROM requests
WHERE Sign = 1 AND __WINDOW__
GROUP BY route, kind
ORDER BY p95_ms DESC, route, kind
