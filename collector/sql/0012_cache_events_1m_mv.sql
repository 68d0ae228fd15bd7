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
    count() AS Lookups
FROM `${database}`.`cache_events`
GROUP BY Minute, ServiceName, Layer, Route, BuildId, Result, Reason
