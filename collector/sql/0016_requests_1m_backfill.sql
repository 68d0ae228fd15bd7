-- Counts for the requests already stored when 0015 arrived, by the view's own query. Runs once,
-- before the collector accepts traffic.
INSERT INTO `${database}`.`requests_1m`
${select_of_0015}
