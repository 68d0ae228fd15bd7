-- Where request time goes: total time spent in each phase's spans.
SELECT
    SpanAttributes['nextrace.phase'] AS phase,
    count() AS spans,
    round(sum(Duration) / 1e6, 1) AS total_ms,
    round(avg(Duration) / 1e6, 2) AS avg_ms
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.phase'] IN ('cdn', 'middleware', 'route', 'render', 'fetch', 'stream')
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(SpanAttributes['nextrace.build_id'] IN (${build:singlequote}), $build)
GROUP BY phase
ORDER BY total_ms DESC, phase
