-- How navigations were served by the client router cache.
SELECT
    SpanAttributes['nextrace.navigation.router_cache'] AS router_cache,
    count() AS navigations
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.phase'] = 'navigation'
  AND $__conditionalAll(SpanAttributes['next.route'] IN (${route:singlequote}), $route)
GROUP BY router_cache
ORDER BY navigations DESC, router_cache
