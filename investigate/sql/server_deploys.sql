-- Deploys, in order, as the dashboards' annotations find them: the stored view `deploys`
-- (collector/sql/schema.sql).
SELECT
    toUnixTimestamp64Nano(Timestamp) AS at_ns,
    Timestamp AS at,
    BuildId AS build,
    ServiceName AS service
FROM deploys
WHERE __WINDOW__
ORDER BY at_ns, service, build
