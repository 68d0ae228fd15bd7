-- Keep the parts a merge replaced for 8 minutes (ClickHouse's own default; the embedded engine
-- drops them at once). A full disk can commit a merged part with empty files; with the parts it
-- was merged from still on disk, reloading its table brings them back (as ClickHouse does when it
-- starts), where detaching it alone lost every row it held (ClickHouseStore.detach_broken_parts).
ALTER TABLE `${database}`.`${table}` ${on_cluster} MODIFY SETTING old_parts_lifetime = 480;
ALTER TABLE `${database}`.`${table}_trace_id_ts` ${on_cluster} MODIFY SETTING old_parts_lifetime = 480;
ALTER TABLE `${database}`.`builds` ${on_cluster} MODIFY SETTING old_parts_lifetime = 480;
ALTER TABLE `${database}`.`cache_events` ${on_cluster} MODIFY SETTING old_parts_lifetime = 480;
ALTER TABLE `${database}`.`cache_events_1m` ${on_cluster} MODIFY SETTING old_parts_lifetime = 480;
ALTER TABLE `${database}`.`lifecycle_spans` ${on_cluster} MODIFY SETTING old_parts_lifetime = 480;
ALTER TABLE `${database}`.`nextrace_collector_stats` ${on_cluster} MODIFY SETTING old_parts_lifetime = 480;
ALTER TABLE `${database}`.`nextrace_wal_logs` ${on_cluster} MODIFY SETTING old_parts_lifetime = 480;
ALTER TABLE `${database}`.`phase_time_1m` ${on_cluster} MODIFY SETTING old_parts_lifetime = 480;
ALTER TABLE `${database}`.`requests` ${on_cluster} MODIFY SETTING old_parts_lifetime = 480;
ALTER TABLE `${database}`.`requests_1m` ${on_cluster} MODIFY SETTING old_parts_lifetime = 480
