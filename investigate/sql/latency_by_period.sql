-- Navigation latency per route and period (periods split at {bounds}): p50, p95, p99 of the
-- navigations that went to the server. Those the browser's router cache served whole
-- (nextrace.navigation.router_cache = hit) take no time worth measuring and would pull the
-- median to 0: they are counted apart (router_hits).
SELECT
    arrayCount(b -> b <= Timestamp, {bounds:Array(DateTime64(9))}) AS period,
    SpanAttributes['next.route'] AS route,
    countIf(NOT served_in_browser) AS navigations,
    countIf(served_in_browser) AS router_hits,
    ifNotFinite(quantileExactIf(0.5)(Duration, NOT served_in_browser) / 1e6, 0) AS p50_ms,
    ifNotFinite(quantileExactIf(0.95)(Duration, NOT served_in_browser) / 1e6, 0) AS p95_ms,
    ifNotFinite(quantileExactIf(0.99)(Duration, NOT served_in_browser) / 1e6, 0) AS p99_ms
FROM (
    SELECT *, SpanAttributes['nextrace.navigation.router_cache'] = 'hit' AS served_in_browser
    FROM otel_traces
    WHERE ServiceName = {browser_service:String} AND Phase = 'navigation' AND __WINDOW__
)
GROUP BY GROUPING SETS ((period, route), (period))
ORDER BY period, route
