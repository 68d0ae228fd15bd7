-- Cache lookups per period (split at the deploys {bounds_ns}, Unix ns) and layer, from
-- `cache_events`, which the reference server's cache spans and a real Next.js app's derived
-- rows fill alike: a stale entry is served from the cache, so it counts with the hits (as the
-- Cache health dashboard counts them); misses are misses and revalidated entries; deploy
-- misses are those whose reason is deploy (an entry the new build lacked).
SELECT
    arrayCount(b -> b <= toUnixTimestamp64Nano(Timestamp), {bounds_ns:Array(Int64)}) AS period,
    Layer AS layer,
    sumIf(Sign, Result != 'bypass') AS lookups,
    sumIf(Sign, Result = 'hit') AS hits,
    sumIf(Sign, Result = 'stale') AS stale,
    sumIf(Sign, Result IN ('miss', 'revalidated')) AS misses,
    sumIf(Sign, Result IN ('miss', 'revalidated') AND Reason = 'deploy') AS deploy_misses,
    sumIf(Sign, Result = 'bypass') AS bypassed
FROM cache_events
WHERE Layer != '' AND __WINDOW__
GROUP BY period, layer
HAVING lookups != 0 OR bypassed != 0
ORDER BY period, layer
