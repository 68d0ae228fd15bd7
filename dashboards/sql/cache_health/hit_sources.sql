-- Which source filled the entries that served hits: build, request, warm-up, prefetch, revalidation.
SELECT
    Layer AS layer,
    if(EntrySource = '', 'unknown', EntrySource) AS source,
    count() AS hits
FROM cache_events
WHERE $__timeFilter(Timestamp)
  AND Result IN ('hit', 'stale')
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY layer, source
ORDER BY hits DESC, layer, source
