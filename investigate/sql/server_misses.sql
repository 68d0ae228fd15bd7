-- Every miss and stale hit in `cache_events`, per layer, result and reason (a producer that
-- does not say why counts under "unknown"), and how many raced a queued warm-up.
SELECT
    Layer AS layer,
    Result AS result,
    if(Reason = '', 'unknown', Reason) AS reason,
    sumIf(Sign, WarmupPending) AS warmup_pending,
    sum(Sign) AS lookups
FROM cache_events
WHERE Result IN ('miss', 'stale', 'revalidated') AND Layer != '' AND __WINDOW__
GROUP BY layer, result, reason
HAVING lookups != 0
ORDER BY layer, lookups DESC, result, reason
