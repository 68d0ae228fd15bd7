-- How long before its first user hit a warm-up filled an entry: the first hit's entry age.
SELECT
    Key AS key,
    round(min(EntryAgeMs), 1) AS lead_time_ms,
    count() AS hits
FROM cache_events
WHERE $__timeFilter(Timestamp)
  AND Layer = 'data'
  AND Result IN ('hit', 'stale')
  AND EntrySource = 'warmup'
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY key
ORDER BY lead_time_ms, key
LIMIT 20
