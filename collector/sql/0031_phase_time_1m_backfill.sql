-- The spans already stored when 0030 arrived, by the view's own query. Runs once, before the
-- collector accepts traffic.
INSERT INTO `${database}`.`phase_time_1m`
${select_of_0030}
