-- Data-cache misses on entries a warm-up had queued but not yet filled (the race), and misses
-- after a revalidation that no warm-up refilled.
SELECT
    countIf(WarmupPending) AS raced_warmup,
    countIf(NOT WarmupPending AND Reason IN ('tag_invalidated', 'path_invalidated')) AS after_revalidation_without_warmup,
    count() AS misses
FROM cache_events
WHERE $__timeFilter(Timestamp)
  AND Layer = 'data'
  AND Result IN ('miss', 'stale')
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
