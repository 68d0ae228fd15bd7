-- Navigation latency per route and period (periods split at {bounds}): p50, p95, p99.
SELECT
    arrayCount(b -> b <= Timestamp, {bounds:Array(DateTime64(9))}) AS period,
    SpanAttributes['next.route'] AS route,
    count() AS navigations,
    quantileExact(0.5)(Duration) / 1e6 AS p50_ms,
    quantileExact(0.95)(Duration) / 1e6 AS p95_ms,
    quantileExact(0.99)(Duration) / 1e6 AS p99_ms
FROM otel_traces
WHERE ServiceName = {browser_service:String} AND Phase = 'navigation' AND __WINDOW__
GROUP BY GROUPING SETS ((period, route), (period))
ORDER BY period, route
