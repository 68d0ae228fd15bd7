-- How navigations were served by the client router cache.
SELECT
    Attributes['nextrace.navigation.router_cache'] AS router_cache,
    count() AS navigations
FROM lifecycle_spans
WHERE $__timeFilter(Timestamp)
  AND Phase = 'navigation'
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
GROUP BY router_cache
ORDER BY navigations DESC, router_cache
