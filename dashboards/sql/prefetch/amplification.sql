-- Prefetches per navigation over time: the amplification that middleware and servers pay for.
SELECT
    $__timeInterval(Timestamp) AS time,
    countIf(SpanAttributes['nextrace.request.kind'] = 'rsc_prefetch')
        / greatest(countIf(SpanAttributes['nextrace.request.kind'] IN ('document', 'rsc_navigation')), 1)
        AS prefetches_per_navigation
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.phase'] = 'request'
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(SpanAttributes['next.route'] IN (${route:singlequote}), $route)
  AND $__conditionalAll(SpanAttributes['nextrace.build_id'] IN (${build:singlequote}), $build)
GROUP BY time
ORDER BY time
