CREATE MATERIALIZED VIEW IF NOT EXISTS `${database}`.`builds_mv` ${on_cluster}
TO `${database}`.`builds`
AS SELECT
    ServiceName,
    BuildId,
    Source,
    min(Timestamp) AS FirstSeen
FROM `${database}`.`requests`
WHERE BuildId != ''
GROUP BY ServiceName, BuildId, Source
