-- Prefetch requests against navigations, as the server saw them, from the per-minute counts.
SELECT
    $__timeInterval(Minute) AS time,
    sumIf(Requests, Kind = 'rsc_prefetch') AS prefetches,
    sumIf(Requests, Kind IN ('document', 'rsc_navigation')) AS navigations
FROM requests_1m
WHERE $__timeFilter(Minute)
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY time
ORDER BY time
