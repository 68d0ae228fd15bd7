-- Counts for the requests already stored when 0015 arrived. Runs once, before the collector
-- accepts traffic.
INSERT INTO `${database}`.`requests_1m`
SELECT toStartOfMinute(Timestamp), ServiceName, Route, BuildId, Kind, count()
FROM `${database}`.`requests`
GROUP BY ALL
