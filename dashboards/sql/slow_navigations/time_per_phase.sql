-- Where request time goes: total time spent in each phase's spans. The reference server names
-- each span's phase (nextrace.phase, the Phase column); for a Next.js service the phase is read
-- from Next's own span type (next.span_type, the NextSpanType column, see
-- docs/semantic-conventions.md), and it has no cdn or stream spans. Only a request span names
-- its route and (for Next.js) its build, so a route or a build is chosen by the traces of its
-- requests.
SELECT
    phase,
    count() AS spans,
    round(sum(Duration) / 1e6, 1) AS total_ms,
    round(avg(Duration) / 1e6, 2) AS avg_ms
FROM (
    SELECT Phase AS phase, Duration, TraceId, ServiceName, SpanAttributes['nextrace.build_id'] AS build
    FROM otel_traces
    WHERE $__timeFilter(Timestamp)
      AND Phase IN ('cdn', 'middleware', 'route', 'render', 'fetch', 'stream')
    UNION ALL
    SELECT
        multiIf(
            NextSpanType = 'Middleware.execute', 'middleware',
            NextSpanType = 'NextNodeServer.findPageComponents', 'route',
            NextSpanType = 'AppRender.getBodyResult', 'render',
            'fetch'
        ) AS phase,
        Duration,
        TraceId,
        ServiceName,
        '' AS build
    FROM otel_traces
    WHERE $__timeFilter(Timestamp)
      AND ScopeName = 'next.js'
      AND Phase = ''
      AND NextSpanType IN (
          'Middleware.execute', 'NextNodeServer.findPageComponents', 'AppRender.getBodyResult',
          'AppRender.fetch')
)
WHERE $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(
      TraceId IN (SELECT TraceId FROM requests WHERE $__timeFilter(Timestamp) AND Route IN (${route:singlequote})),
      $route)
  AND $__conditionalAll(
      build IN (${build:singlequote})
      OR TraceId IN (SELECT TraceId FROM requests WHERE $__timeFilter(Timestamp) AND BuildId IN (${build:singlequote})),
      $build)
GROUP BY phase
ORDER BY total_ms DESC, phase
