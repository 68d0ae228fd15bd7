-- The share of server requests, server time, middleware runs and middleware time spent on prefetches.
SELECT
    SpanAttributes['nextrace.phase'] AS phase,
    count() AS spans,
    round(countIf(SpanAttributes['nextrace.request.kind'] = 'rsc_prefetch') / count(), 4) AS prefetch_share,
    round(sumIf(Duration, SpanAttributes['nextrace.request.kind'] = 'rsc_prefetch')
          / greatest(sum(Duration), 1), 4) AS prefetch_time_share
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.phase'] IN ('request', 'middleware')
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(SpanAttributes['nextrace.build_id'] IN (${build:singlequote}), $build)
GROUP BY phase
ORDER BY phase
