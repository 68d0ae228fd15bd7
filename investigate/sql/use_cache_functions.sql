-- Each 'use cache' function, per handler (layer), from `cache_events`: its lookups, those it
-- served (a stale entry is served), those whose entry another instance stored, its misses by
-- reason, the requests it ran on without a server cache ('use cache: private': bypassed) and
-- how many instances looked it up.
SELECT
    Layer AS layer,
    if(Function = '', '(unnamed)', Function) AS function,
    sum(Sign) AS lookups,
    sumIf(Sign, Result IN ('hit', 'stale')) AS served,
    sumIf(Sign, Result IN ('hit', 'stale') AND EntrySourceInstance NOT IN ('', Instance))
        AS from_other_instances,
    sumIf(Sign, Result = 'miss') AS misses,
    sumIf(Sign, Result = 'miss' AND Reason = 'cold') AS cold,
    sumIf(Sign, Result = 'miss' AND Reason = 'other_instance') AS other_instance,
    sumIf(Sign, Result = 'miss' AND Reason = 'expired') AS expired,
    sumIf(Sign, Result = 'miss' AND Reason = 'deploy') AS deploy,
    sumIf(Sign, Result = 'miss' AND Reason = 'tag_invalidated') AS tag_invalidated,
    sumIf(Sign, Result = 'miss' AND Reason = 'evicted') AS evicted,
    sumIf(Sign, Result = 'bypass') AS bypassed,
    uniqExactIf(Instance, Instance != '') AS instances
FROM cache_events
WHERE startsWith(Layer, 'use_cache') AND __WINDOW__
GROUP BY layer, function
HAVING lookups != 0
ORDER BY misses DESC, layer, function
