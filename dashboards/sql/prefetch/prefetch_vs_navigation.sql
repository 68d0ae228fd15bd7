-- Prefetch requests against navigations, as the server saw them.
SELECT
    $__timeInterval(Timestamp) AS time,
    countIf(Kind = 'rsc_prefetch') AS prefetches,
    countIf(Kind IN ('document', 'rsc_navigation')) AS navigations
FROM requests
WHERE $__timeFilter(Timestamp)
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY time
ORDER BY time
