-- Deploys, in order, as the dashboards' annotations find them (dashboards/sql/common/
-- deploys.sql): the reference server's deploy spans, and for a Next.js service the first
-- request each new build served (`builds`; a service's first build in the store is not a
-- deploy).
SELECT
    toUnixTimestamp64Nano(Timestamp) AS at_ns,
    Timestamp AS at,
    build,
    service
FROM (
    SELECT Timestamp, BuildId AS build, ServiceName AS service
    FROM lifecycle_spans
    WHERE Phase = 'deploy'
    UNION ALL
    SELECT first_request AS Timestamp, BuildId AS build, ServiceName AS service
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
    WHERE first_request > first_of_service
)
WHERE __WINDOW__
ORDER BY at_ns, service, build
