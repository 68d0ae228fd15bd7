-- The builds of the requests already stored when 0026 arrived, by the view's own query. Runs
-- once, before the collector accepts traffic.
INSERT INTO `${database}`.`builds`
${select_of_0026}
