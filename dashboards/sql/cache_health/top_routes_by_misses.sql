-- The routes that miss most, and how many of those misses a deploy caused.
SELECT
    Route AS route,
    count() AS misses,
    countIf(Reason = 'deploy') AS after_deploy,
    countIf(WarmupPending) AS warmup_raced
FROM cache_events
WHERE $__timeFilter(Timestamp)
  AND Result IN ('miss', 'revalidated')
  AND Route != ''
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY route
ORDER BY misses DESC, route
LIMIT 10
