-- Warm-up coverage: the share of data-cache hits served by entries that a warm-up filled.
SELECT
    countIf(EntrySource = 'warmup') AS warmed_hits,
    count() AS hits,
    round(warmed_hits / greatest(hits, 1), 4) AS coverage
FROM cache_events
WHERE $__timeFilter(Timestamp)
  AND Layer = 'data'
  AND Result IN ('hit', 'stale')
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
