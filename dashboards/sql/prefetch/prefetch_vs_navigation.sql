-- Prefetch requests against navigations, as the server saw them.
SELECT
    $__timeInterval(Timestamp) AS time,
    countIf(SpanAttributes['nextrace.request.kind'] = 'rsc_prefetch') AS prefetches,
    countIf(SpanAttributes['nextrace.request.kind'] IN ('document', 'rsc_navigation'))
        AS navigations
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.phase'] = 'request'
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(SpanAttributes['next.route'] IN (${route:singlequote}), $route)
  AND $__conditionalAll(SpanAttributes['nextrace.build_id'] IN (${build:singlequote}), $build)
GROUP BY time
ORDER BY time
