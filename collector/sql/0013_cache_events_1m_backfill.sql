-- Counts for the cache events already stored when 0012 arrived. Runs once, before the
-- collector accepts traffic, so no row is counted twice.
INSERT INTO `${database}`.`cache_events_1m`
SELECT toStartOfMinute(Timestamp), ServiceName, Layer, Route, BuildId, Result, Reason, count()
FROM `${database}`.`cache_events`
GROUP BY ALL
