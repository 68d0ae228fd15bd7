-- The slowest navigations and requests; the trace id opens Grafana's trace view.
SELECT
    TraceId AS trace_id,
    SpanName AS span,
    ServiceName AS service,
    round(Duration / 1e6, 1) AS duration_ms,
    Timestamp AS started
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.phase'] IN ('navigation', 'request')
  AND ParentSpanId = ''
  AND $__conditionalAll(SpanAttributes['next.route'] IN (${route:singlequote}), $route)
ORDER BY Duration DESC
LIMIT 20
