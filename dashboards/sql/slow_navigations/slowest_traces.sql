-- The slowest navigations (the virtual browsers' root spans) and requests (`requests`, from
-- the reference server and real Next.js apps alike) that are not part of one of those
-- navigations; the trace id opens Grafana's trace view.
SELECT trace_id, span, service, duration_ms, started
FROM (
    SELECT
        TraceId AS trace_id,
        SpanName AS span,
        ServiceName AS service,
        round(Duration / 1e6, 1) AS duration_ms,
        Timestamp AS started,
        Duration AS duration_ns
    FROM otel_traces
    WHERE $__timeFilter(Timestamp)
      AND SpanAttributes['nextrace.phase'] = 'navigation'
      AND ParentSpanId = ''
      AND $__conditionalAll(SpanAttributes['next.route'] IN (${route:singlequote}), $route)
    UNION ALL
    SELECT
        TraceId,
        concat(Method, ' ', Route),
        ServiceName,
        round(Duration / 1e6, 1),
        Timestamp,
        Duration
    FROM requests
    WHERE $__timeFilter(Timestamp)
      AND $__conditionalAll(Route IN (${route:singlequote}), $route)
      AND TraceId NOT IN (
          SELECT TraceId FROM otel_traces
          WHERE $__timeFilter(Timestamp) AND SpanAttributes['nextrace.phase'] = 'navigation'
      )
)
ORDER BY duration_ns DESC
LIMIT 20
