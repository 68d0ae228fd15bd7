-- Rows derived from a real Next.js trace can be corrected when more of its spans arrive late
-- (collector/pipeline/normalizer.py): the old rows are inserted again with Sign = -1, so that the
-- per-minute sums subtract them, then the old rows and their cancellations are deleted and the
-- new rows inserted. The row tables hold only Sign = 1 rows outside a correction.
ALTER TABLE `${database}`.`requests` ${on_cluster} ADD COLUMN IF NOT EXISTS Sign Int8 DEFAULT 1;
ALTER TABLE `${database}`.`cache_events` ${on_cluster} ADD COLUMN IF NOT EXISTS Sign Int8 DEFAULT 1;
ALTER TABLE `${database}`.`requests_1m` ${on_cluster} MODIFY COLUMN Requests Int64;
ALTER TABLE `${database}`.`cache_events_1m` ${on_cluster} MODIFY COLUMN Lookups Int64;
DROP VIEW IF EXISTS `${database}`.`requests_1m_mv` ${on_cluster};
CREATE MATERIALIZED VIEW IF NOT EXISTS `${database}`.`requests_1m_mv` ${on_cluster}
TO `${database}`.`requests_1m`
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    Route,
    BuildId,
    Kind,
    sum(Sign) AS Requests
FROM `${database}`.`requests`
GROUP BY Minute, ServiceName, Route, BuildId, Kind;
DROP VIEW IF EXISTS `${database}`.`cache_events_1m_mv` ${on_cluster};
CREATE MATERIALIZED VIEW IF NOT EXISTS `${database}`.`cache_events_1m_mv` ${on_cluster}
TO `${database}`.`cache_events_1m`
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    Layer,
    Route,
    BuildId,
    Result,
    Reason,
    sum(Sign) AS Lookups
FROM `${database}`.`cache_events`
GROUP BY Minute, ServiceName, Layer, Route, BuildId, Result, Reason
