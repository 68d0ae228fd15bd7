-- Misses over time by why the entry was not there, from the per-minute counts.
SELECT
    $__timeInterval(Minute) AS time,
    if(Reason = '', 'unknown', Reason) AS reason,
    sum(Lookups) AS misses
FROM cache_events_1m
WHERE $__timeFilter(Minute)
  AND Result IN ('miss', 'revalidated')
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY time, reason
ORDER BY time, reason
