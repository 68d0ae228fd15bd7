-- Remember the last 1000 insert tokens per table, so that a batch inserted again (a retry
-- after an ambiguous failure, a replay of the write-ahead log after a crash) is stored once.
-- Replicated tables keep such a window already (replicated_deduplication_window).
ALTER TABLE `${database}`.`${table}` ${on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE `${database}`.`${table}_trace_id_ts` ${on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE `${database}`.`cache_events` ${on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE `${database}`.`requests` ${on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE `${database}`.`cache_events_1m` ${on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE `${database}`.`requests_1m` ${on_cluster} MODIFY SETTING non_replicated_deduplication_window = 1000
