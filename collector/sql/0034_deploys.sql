-- Deploys, one row each, where both the dashboards' annotations and the report read them: the
-- reference server's deploy spans, and for a Next.js service the first request that each new
-- build served (the build comes from @nextrace/next, the helper or the resource; a service's
-- first build in the store is not a deploy), from `builds`, which remembers when each build
-- first served. A plain view: computed when read, over two small tables.
CREATE VIEW IF NOT EXISTS `${database}`.`deploys` ${on_cluster} AS
SELECT Timestamp, BuildId, ServiceName, 'deploy span' AS Source
FROM `${database}`.`lifecycle_spans`
WHERE Phase = 'deploy'
UNION ALL
SELECT first_request AS Timestamp, BuildId, ServiceName, 'first request' AS Source
FROM (
    SELECT
        ServiceName,
        BuildId,
        min(FirstSeen) AS first_request,
        min(first_request) OVER (PARTITION BY ServiceName) AS first_of_service
    FROM `${database}`.`builds`
    WHERE Source = 'nextjs'
    GROUP BY ServiceName, BuildId
)
WHERE first_request > first_of_service
