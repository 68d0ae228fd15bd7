-- Per route, the data-cache lookups that missed (or found a stale entry) while a warm-up for
-- their entry was still queued (WarmupPending): the warm-up raced the users and lost.
SELECT Route AS route, sum(Sign) AS raced
FROM cache_events
WHERE WarmupPending AND Layer = 'data' AND Result IN ('miss', 'stale') AND Route != ''
  AND __WINDOW__
GROUP BY route
HAVING raced > 0
ORDER BY raced DESC, route
LIMIT 5
