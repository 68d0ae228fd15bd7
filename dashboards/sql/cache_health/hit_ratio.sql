-- Hit ratio per cache layer over time; a stale entry is served from cache, so it counts as a hit.
SELECT
    $__timeInterval(Timestamp) AS time,
    Layer,
    countIf(Result IN ('hit', 'stale')) / count() AS hit_ratio
FROM cache_events
WHERE $__timeFilter(Timestamp)
  AND Result != 'bypass'
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY time, Layer
ORDER BY time, Layer
