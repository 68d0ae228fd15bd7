-- Prefetches per navigation over time: the amplification that middleware and servers pay for.
SELECT
    $__timeInterval(Timestamp) AS time,
    countIf(Kind = 'rsc_prefetch')
        / greatest(countIf(Kind IN ('document', 'rsc_navigation')), 1) AS prefetches_per_navigation
FROM requests
WHERE $__timeFilter(Timestamp)
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY time
ORDER BY time
