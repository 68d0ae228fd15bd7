-- Per layer and route, the lookups that found their entry past its revalidate time (Reason
-- expired): misses made the user wait for the data again, stale hits were served while it was
-- fetched again. Many of them: the entries live shorter than the traffic returns.
SELECT
    Layer AS layer,
    Route AS route,
    sumIf(Sign, Result IN ('miss', 'revalidated')) AS misses,
    sumIf(Sign, Result = 'stale') AS stale
FROM cache_events
WHERE Reason = 'expired' AND Route != '' AND Layer != 'router' AND __WINDOW__
GROUP BY layer, route
HAVING misses + stale > 0
ORDER BY misses DESC, stale DESC, layer, route
LIMIT 5
