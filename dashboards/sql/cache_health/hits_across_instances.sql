-- Per cache layer, the hits whose entry another instance of the app stored (a shared handler,
-- Redis say, doing its job), against the misses because only another instance's memory held
-- the entry (a per-instance cache not shared). Instances are the apps' service.instance.id;
-- a hit whose storing instance is not known counts as a hit only.
SELECT
    Layer AS layer,
    countIf(Result IN ('hit', 'stale')) AS hits,
    countIf(Result IN ('hit', 'stale') AND EntrySourceInstance NOT IN ('', Instance))
        AS from_other_instances,
    from_other_instances / nullIf(hits, 0) AS cross_instance_ratio,
    countIf(Result = 'miss' AND Reason = 'other_instance') AS missed_on_other_instances
FROM cache_events
WHERE $__timeFilter(Timestamp)
  AND Instance != ''
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(Route IN (${route:singlequote}), $route)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY layer
ORDER BY layer
