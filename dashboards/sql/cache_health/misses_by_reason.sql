-- Misses over time by why the entry was not there.
SELECT
    $__timeInterval(Timestamp) AS time,
    if(Reason = '', 'unknown', Reason) AS reason,
    count() AS misses
FROM cache_events
WHERE $__timeFilter(Timestamp)
  AND Result IN ('miss', 'revalidated')
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY time, reason
ORDER BY time, reason
