-- Prefetches per navigation over time: the amplification that middleware and servers pay
-- for. From the per-minute counts.
SELECT
    $__timeInterval(Minute) AS time,
    sumIf(Requests, Kind = 'rsc_prefetch')
        / greatest(sumIf(Requests, Kind IN ('document', 'rsc_navigation')), 1)
        AS prefetches_per_navigation
FROM requests_1m
WHERE $__timeFilter(Minute)
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY time
ORDER BY time
