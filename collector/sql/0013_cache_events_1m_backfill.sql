-- Counts for the cache events already stored when 0012 arrived, by the view's own query. Runs
-- once, before the collector accepts traffic, so no row is counted twice.
INSERT INTO `${database}`.`cache_events_1m`
${select_of_0012}
