-- Where request time goes: total time spent in each phase's spans. The reference server names
-- each span's phase (nextrace.phase); for a Next.js service the phase is read from Next's own
-- span type (docs/semantic-conventions.md), and it has no cdn or stream spans. Only a request
-- span names its route and (for Next.js) its build, so a route or a build is chosen by the
-- traces of its requests.
SELECT
    multiIf(
        SpanAttributes['nextrace.phase'] != '', SpanAttributes['nextrace.phase'],
        ScopeName != 'next.js', '',
        SpanAttributes['next.span_type'] = 'Middleware.execute', 'middleware',
        SpanAttributes['next.span_type'] = 'NextNodeServer.findPageComponents', 'route',
        SpanAttributes['next.span_type'] = 'AppRender.getBodyResult', 'render',
        SpanAttributes['next.span_type'] = 'AppRender.fetch', 'fetch',
        ''
    ) AS phase,
    count() AS spans,
    round(sum(Duration) / 1e6, 1) AS total_ms,
    round(avg(Duration) / 1e6, 2) AS avg_ms
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND phase IN ('cdn', 'middleware', 'route', 'render', 'fetch', 'stream')
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(
      TraceId IN (SELECT TraceId FROM requests WHERE $__timeFilter(Timestamp) AND Route IN (${route:singlequote})),
      $route)
  AND $__conditionalAll(
      SpanAttributes['nextrace.build_id'] IN (${build:singlequote})
      OR TraceId IN (SELECT TraceId FROM requests WHERE $__timeFilter(Timestamp) AND BuildId IN (${build:singlequote})),
      $build)
GROUP BY phase
ORDER BY total_ms DESC, phase
