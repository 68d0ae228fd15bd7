-- Deploys, drawn as annotations: the reference server's deploy spans, and for a Next.js service
-- the first request that each new build served (the build comes from the helper,
-- @nextrace/next, or the resource; a service's first build in the store is not a deploy), from
-- `builds`, which remembers when each build first served.
SELECT time, text, tags
FROM (
    SELECT
        Timestamp AS time,
        concat('deploy ', BuildId) AS text,
        'deploy' AS tags
    FROM lifecycle_spans
    WHERE Phase = 'deploy' AND $__timeFilter(Timestamp)
    UNION ALL
    SELECT
        first_request AS time,
        concat('deploy ', BuildId, ' (', ServiceName, ')') AS text,
        'deploy' AS tags
    FROM (
        SELECT
            ServiceName,
            BuildId,
            min(FirstSeen) AS first_request,
            min(first_request) OVER (PARTITION BY ServiceName) AS first_of_service
        FROM builds
        WHERE Source = 'nextjs'
        GROUP BY ServiceName, BuildId
    )
    WHERE first_request > first_of_service AND $__timeFilter(first_request)
)
ORDER BY time
