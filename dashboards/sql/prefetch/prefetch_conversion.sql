-- Prefetches the browsers made, and how many a later navigation used (router-cache hit or
-- partial hit on the entry the prefetch filled).
WITH used AS (
    SELECT DISTINCT SpanAttributes['cache.entry.source_trace_id'] AS trace_id
    FROM otel_traces
    WHERE $__timeFilter(Timestamp)
      AND SpanAttributes['cache.layer'] = 'router'
      AND SpanAttributes['nextrace.router.result'] IN ('hit', 'partial')
      AND SpanAttributes['cache.entry.source'] = 'prefetch'
)
SELECT
    count() AS prefetches,
    countIf(TraceId IN (SELECT trace_id FROM used)) AS used,
    prefetches - used AS never_used,
    round(used / greatest(prefetches, 1), 4) AS conversion
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.phase'] = 'prefetch'
  AND ParentSpanId = ''
  AND $__conditionalAll(SpanAttributes['next.route'] IN (${route:singlequote}), $route)
