-- Where request time goes: total time spent in each phase's spans. The reference server names
-- each span's phase (nextrace.phase, the Phase column); for a Next.js service the phase is read
-- from Next's own span type (next.span_type, the NextSpanType column, see
-- docs/semantic-conventions.md; ${next_phase_branches} is contract/nextjs.py's map, filled in
-- when the dashboard is built), and it has no cdn or stream spans. Without a route or build
-- chosen, the per-minute sums (phase_time_1m) answer; with one, the spans do, since only a
-- request span names its route and (for Next.js) its build, so a route or a build is chosen by
-- the traces of its requests. (`$__conditionalAll(0 = 1, $v)` is true only when $v is All.)
SELECT
    phase,
    sum(span_count) AS spans,
    round(sum(duration_ns) / 1e6, 1) AS total_ms,
    round(sum(duration_ns) / greatest(sum(span_count), 1) / 1e6, 2) AS avg_ms
FROM (
    SELECT Phase AS phase, Spans AS span_count, DurationNs AS duration_ns
    FROM phase_time_1m
    WHERE $__conditionalAll(0 = 1, $route) AND $__conditionalAll(0 = 1, $build)
      AND $__timeFilter(Minute)
      AND Phase IN ('cdn', 'middleware', 'route', 'render', 'fetch', 'stream')
      AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
    UNION ALL
    SELECT phase, 1 AS span_count, Duration AS duration_ns
    FROM (
        SELECT Phase AS phase, Duration, TraceId, ServiceName, SpanAttributes['nextrace.build_id'] AS build
        FROM otel_traces
        WHERE NOT ($__conditionalAll(0 = 1, $route) AND $__conditionalAll(0 = 1, $build))
          AND $__timeFilter(Timestamp)
          AND Phase IN ('cdn', 'middleware', 'route', 'render', 'fetch', 'stream')
        UNION ALL
        SELECT
            multiIf(
                ${next_phase_branches}
                ''
            ) AS phase,
            Duration,
            TraceId,
            ServiceName,
            '' AS build
        FROM otel_traces
        WHERE NOT ($__conditionalAll(0 = 1, $route) AND $__conditionalAll(0 = 1, $build))
          AND $__timeFilter(Timestamp)
          AND phase != ''
          AND Phase = ''
          AND ScopeName = 'next.js'
    )
    WHERE $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
      AND $__conditionalAll(
          TraceId IN (SELECT TraceId FROM requests WHERE $__timeFilter(Timestamp) AND Route IN (${route:singlequote})),
          $route)
      AND $__conditionalAll(
          build IN (${build:singlequote})
          OR TraceId IN (SELECT TraceId FROM requests WHERE $__timeFilter(Timestamp) AND BuildId IN (${build:singlequote})),
          $build)
)
GROUP BY phase
ORDER BY total_ms DESC, phase
