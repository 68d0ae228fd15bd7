-- The slowest navigations (the virtual browsers' root spans) and requests (`requests`, from
-- the reference server and real Next.js apps alike) that are not part of one of those
-- navigations; the trace id opens Grafana's trace view. Only the 200 slowest requests are
-- checked against the navigations' traces (the check reads every trace id): a request inside a
-- navigation is outranked by its navigation, which holds a request or two, so no more than
-- 20 + 2 * 20 requests can outrank the 20th trace shown.
SELECT trace_id, span, service, duration_ms, started
FROM (
    SELECT
        TraceId AS trace_id,
        SpanName AS span,
        ServiceName AS service,
        round(Duration / 1e6, 1) AS duration_ms,
        Timestamp AS started,
        Duration AS duration_ns
    FROM lifecycle_spans
    WHERE $__timeFilter(Timestamp)
      AND Phase = 'navigation'
      AND IsRoot
      AND $__conditionalAll(Route IN (${route:singlequote}), $route)
    ORDER BY duration_ns DESC
    LIMIT 20
    UNION ALL
    SELECT trace_id, span, service, duration_ms, started, duration_ns
    FROM (
        SELECT
            TraceId AS trace_id,
            concat(Method, ' ', Route) AS span,
            ServiceName AS service,
            round(Duration / 1e6, 1) AS duration_ms,
            Timestamp AS started,
            Duration AS duration_ns
        FROM requests
        WHERE $__timeFilter(Timestamp)
          AND $__conditionalAll(Route IN (${route:singlequote}), $route)
        ORDER BY duration_ns DESC
        LIMIT 200
    )
    WHERE trace_id NOT IN (
        SELECT TraceId FROM lifecycle_spans
        WHERE $__timeFilter(Timestamp) AND Phase = 'navigation'
    )
)
ORDER BY duration_ns DESC
LIMIT 20
