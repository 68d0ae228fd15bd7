-- A store that already held spans when 0005 arrived gets their cache events too, by the view's
-- own query. Runs once, before the collector accepts traffic; rows the view already wrote are
-- skipped.
INSERT INTO `${database}`.`cache_events`
SELECT * FROM (${select_of_0005})
WHERE SpanId NOT IN (SELECT SpanId FROM `${database}`.`cache_events`)
