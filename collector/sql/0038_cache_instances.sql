-- Which instance of an app made a cache lookup (its service.instance.id), which one stored the
-- entry a hit was served from, and, for a 'use cache' lookup, the cached function's id: a cache
-- kept in one instance's memory misses on the others (Reason other_instance), a shared one does
-- not, and its hits say where their entries came from. Empty where nothing says.
ALTER TABLE `${database}`.`cache_events` ${on_cluster} ADD COLUMN IF NOT EXISTS Instance LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE `${database}`.`cache_events` ${on_cluster} ADD COLUMN IF NOT EXISTS EntrySourceInstance LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE `${database}`.`cache_events` ${on_cluster} ADD COLUMN IF NOT EXISTS Function LowCardinality(String) DEFAULT '' CODEC(ZSTD(1))
