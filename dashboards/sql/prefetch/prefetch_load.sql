-- The load prefetches put on the server: their share of requests and of request time, and of
-- middleware executions and middleware time (seed 002). Requests come from `requests`, every
-- source alike; middleware runs from the reference server's middleware spans, which carry the
-- request kind, and from a Next.js service's requests rows (time from Middleware.execute).
SELECT
    phase,
    count() AS spans,
    round(countIf(prefetch) / count(), 4) AS prefetch_share,
    round(sumIf(duration_ns, prefetch) / greatest(sum(duration_ns), 1), 4) AS prefetch_time_share
FROM (
    SELECT
        'middleware' AS phase,
        RequestKind = 'rsc_prefetch' AS prefetch,
        Duration AS duration_ns
    FROM lifecycle_spans
    WHERE $__timeFilter(Timestamp)
      AND Phase = 'middleware'
      AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
      AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
    UNION ALL
    SELECT
        arrayJoin(if(MiddlewareMs IS NULL, ['request'], ['request', 'middleware'])) AS phase,
        Kind = 'rsc_prefetch' AS prefetch,
        if(phase = 'request', Duration, toUInt64(assumeNotNull(MiddlewareMs) * 1e6)) AS duration_ns
    FROM requests
    WHERE $__timeFilter(Timestamp)
      AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
      AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
)
GROUP BY phase
ORDER BY phase
