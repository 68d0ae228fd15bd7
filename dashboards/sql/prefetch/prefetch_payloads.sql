-- What prefetches got back per route: the full payload, only the loading state, or nothing.
SELECT
    Route AS route,
    countIf(Attributes['nextrace.prefetch.payload'] = 'full') AS full,
    countIf(Attributes['nextrace.prefetch.payload'] = 'loading') AS loading,
    countIf(Attributes['nextrace.prefetch.payload'] = 'empty') AS empty
FROM lifecycle_spans
WHERE $__timeFilter(Timestamp)
  AND Phase = 'prefetch'
  AND NOT IsRoot
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY route
ORDER BY route
