-- What prefetches got back per route: the full payload, only the loading state, or nothing.
-- One answer per prefetch (its trace): the server's span of it where the server records one
-- (the reference server's), else the browser's (a real Next.js app's, @nextrace/next/client).
SELECT
    route,
    countIf(payload = 'full') AS full,
    countIf(payload = 'loading') AS loading,
    countIf(payload = 'empty') AS empty
FROM (
    SELECT
        argMin(Route, IsRoot) AS route,
        argMin(Attributes['nextrace.prefetch.payload'], IsRoot) AS payload
    FROM lifecycle_spans
    WHERE $__timeFilter(Timestamp)
      AND Phase = 'prefetch'
      AND Attributes['nextrace.prefetch.payload'] != ''
      AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
      AND $__conditionalAll(Route IN (${route:singlequote}), $route)
      AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
    GROUP BY TraceId
)
GROUP BY route
ORDER BY route
