SELECT DISTINCT SpanAttributes['next.route'] AS route FROM otel_traces
WHERE SpanAttributes['nextrace.phase'] IN ('navigation', 'request') AND route != ''
  AND $__timeFilter(Timestamp)
ORDER BY route
