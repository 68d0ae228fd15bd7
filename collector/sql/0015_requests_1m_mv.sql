CREATE MATERIALIZED VIEW IF NOT EXISTS `${database}`.`requests_1m_mv` ${on_cluster}
TO `${database}`.`requests_1m`
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    Route,
    BuildId,
    Kind,
    count() AS Requests
FROM `${database}`.`requests`
GROUP BY Minute, ServiceName, Route, BuildId, Kind
