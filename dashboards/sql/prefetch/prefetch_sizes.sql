-- What prefetch answers weigh, per route: the response body as sent (after compression), from
-- http.response.body.size on the request span. Reads `requests`: the reference server's
-- prefetches, and a real Next.js app's when @nextrace/next's processor records the size.
SELECT
    Route AS route,
    count() AS prefetches,
    round(quantile(0.5)(ResponseBytes)) AS p50_bytes,
    round(quantile(0.95)(ResponseBytes)) AS p95_bytes,
    sum(ResponseBytes) AS total_bytes
FROM requests
WHERE $__timeFilter(Timestamp)
  AND Kind = 'rsc_prefetch'
  AND ResponseBytes IS NOT NULL
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY route
ORDER BY total_bytes DESC, route
LIMIT 20
