-- What prefetches got back per route: the full payload, only the loading state, or nothing.
SELECT
    SpanAttributes['next.route'] AS route,
    countIf(SpanAttributes['nextrace.prefetch.payload'] = 'full') AS full,
    countIf(SpanAttributes['nextrace.prefetch.payload'] = 'loading') AS loading,
    countIf(SpanAttributes['nextrace.prefetch.payload'] = 'empty') AS empty
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.phase'] = 'prefetch'
  AND ParentSpanId != ''
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(SpanAttributes['next.route'] IN (${route:singlequote}), $route)
  AND $__conditionalAll(SpanAttributes['nextrace.build_id'] IN (${build:singlequote}), $build)
GROUP BY route
ORDER BY route
