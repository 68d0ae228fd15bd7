-- Each 'use cache' function (Next.js 16 Cache Components, traced by @nextrace/next's
-- traceCacheHandler), per handler: how often its entries served (a stale entry is served), how
-- often it ran instead, and why: the top reason, and the misses because another instance's
-- memory held the entry (other_instance), which a shared handler would have served.
SELECT
    Layer AS layer,
    Function AS function,
    count() AS lookups,
    countIf(Result IN ('hit', 'stale')) / count() AS hit_ratio,
    countIf(Result = 'miss') AS misses,
    topKIf(1)(Reason, Result = 'miss')[1] AS top_reason,
    countIf(Result = 'miss' AND Reason = 'other_instance') AS other_instance
FROM cache_events
WHERE $__timeFilter(Timestamp)
  AND startsWith(Layer, 'use_cache')
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY layer, function
ORDER BY misses DESC, layer, function
