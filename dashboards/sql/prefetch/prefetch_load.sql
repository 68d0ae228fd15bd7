-- The load prefetches put on the server: their share of requests and of request time, and of
-- middleware executions and middleware time (seed 002). The reference server's request and
-- middleware spans carry the request kind; a Next.js service's come from its requests rows
-- (kind from the trace's shape or the helper, middleware time from Middleware.execute).
SELECT
    phase,
    count() AS spans,
    round(countIf(prefetch) / count(), 4) AS prefetch_share,
    round(sumIf(duration_ns, prefetch) / greatest(sum(duration_ns), 1), 4) AS prefetch_time_share
FROM (
    SELECT
        SpanAttributes['nextrace.phase'] AS phase,
        SpanAttributes['nextrace.request.kind'] = 'rsc_prefetch' AS prefetch,
        Duration AS duration_ns
    FROM otel_traces
    WHERE $__timeFilter(Timestamp)
      AND SpanAttributes['nextrace.phase'] IN ('request', 'middleware')
      AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
      AND $__conditionalAll(SpanAttributes['nextrace.build_id'] IN (${build:singlequote}), $build)
    UNION ALL
    SELECT
        arrayJoin(if(MiddlewareMs IS NULL, ['request'], ['request', 'middleware'])) AS phase,
        Kind = 'rsc_prefetch' AS prefetch,
        if(phase = 'request', Duration, toUInt64(assumeNotNull(MiddlewareMs) * 1e6)) AS duration_ns
    FROM requests
    WHERE $__timeFilter(Timestamp)
      AND Source = 'nextjs'
      AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
      AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
)
GROUP BY phase
ORDER BY phase
