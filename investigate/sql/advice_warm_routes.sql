-- The routes whose lookups missed because a deploy had emptied their entries (Reason deploy),
-- every layer but the browser's router cache, the most first: what a warm-up before the next
-- switch should fetch. Counts sum Sign (row corrections count once).
SELECT Route AS route, sum(Sign) AS misses
FROM cache_events
WHERE Result IN ('miss', 'revalidated') AND Reason = 'deploy' AND Route != ''
  AND Layer != 'router' AND __WINDOW__
GROUP BY route
HAVING misses > 0
ORDER BY misses DESC, route
LIMIT 5
