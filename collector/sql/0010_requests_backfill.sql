-- A store that already held request spans when 0009 arrived gets their rows too, by the
-- view's own query. Runs once, before the collector accepts traffic. (Next.js traces stored
-- before 0010 are not normalized: their grouping happens as they arrive.)
INSERT INTO `${database}`.`requests`
SELECT * FROM (${select_of_0009})
WHERE SpanId NOT IN (SELECT SpanId FROM `${database}`.`requests`)
