-- Prefetches and navigations of the browsers: how many prefetched payloads a navigation
-- later used (router-cache hit or partial hit on an entry a prefetch filled), and how
-- navigations were served by the router cache.
WITH used AS (
    SELECT DISTINCT SpanAttributes['cache.entry.source_trace_id'] AS trace_id
    FROM otel_traces
    WHERE SpanAttributes['cache.layer'] = 'router'
      AND SpanAttributes['nextrace.router.result'] IN ('hit', 'partial')
      AND SpanAttributes['cache.entry.source'] = 'prefetch'
)
SELECT
    countIf(Phase = 'prefetch') AS prefetches,
    countIf(Phase = 'prefetch' AND TraceId NOT IN (SELECT trace_id FROM used))
        AS unused_prefetches,
    countIf(Phase = 'navigation') AS navigations,
    countIf(SpanAttributes['nextrace.navigation.router_cache'] = 'hit') AS router_hits,
    countIf(SpanAttributes['nextrace.navigation.router_cache'] = 'partial') AS router_partial,
    countIf(SpanAttributes['nextrace.navigation.router_cache'] = 'miss') AS router_misses
FROM otel_traces
WHERE ServiceName = {browser_service:String}
  AND Phase IN ('prefetch', 'navigation')
  AND __WINDOW__
