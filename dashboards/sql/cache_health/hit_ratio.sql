-- Hit ratio per cache layer over time; a stale entry is served from cache, so it counts as a
-- hit. Reads the per-minute counts (the panel's interval is at least a minute).
SELECT
    $__timeInterval(Minute) AS time,
    Layer,
    sumIf(Lookups, Result IN ('hit', 'stale')) / sum(Lookups) AS hit_ratio
FROM cache_events_1m
WHERE $__timeFilter(Minute)
  AND Result != 'bypass'
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY time, Layer
ORDER BY time, Layer
