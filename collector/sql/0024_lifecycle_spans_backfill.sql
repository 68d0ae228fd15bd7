-- The sparse-phase spans already stored when 0023 arrived, by the view's own query. Runs once,
-- before the collector accepts traffic.
INSERT INTO `${database}`.`lifecycle_spans`
${select_of_0023}
