-- nextrace: single node
-- otel_traces stored the way it is read: by time, then trace, so a trace's spans lie together.
-- Its ids then compress to a fraction (a trace id is stored once per trace, not once per span)
-- and a trace read by id is one range of the primary key, where the exporter's sort key
-- (ServiceName, SpanName, time) scattered it over the day and needed a bloom filter to find it.
-- Span attributes, now mixed from every kind of span, are compressed with ZSTD(6): ZSTD(1)
-- doubled their bytes in this order. The skip indexes go: the trace id's is the sort key's
-- work now, and the attribute maps' four bloom filters cost every insert and served only
-- searches of raw attributes, which no panel makes (they read the derived tables). Columns and
-- types stay the exporter's; docs/collector.md lists every divergence and why.
-- The new table is the old one's columns (as the exporter or an earlier nextrace made them,
-- with Phase and NextSpanType) under the new key, codecs and indexes. The old rows are copied
-- into it and the two exchanged, so nothing stored is
-- lost: writers (a contrib exporter sharing the store) must be stopped while this runs. Run
-- again after a crash at any step, it starts over from what otel_traces holds then, which is
-- always every span. On a cluster it does not run (see collector/storage/migrations.py): copying one
-- node's rows would drop the other shards'.
DROP TABLE IF EXISTS `${database}`.`${table}_sorted_by_trace`;
CREATE TABLE `${database}`.`${table}_sorted_by_trace` AS `${database}`.`${table}`
ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFifteenMinutes(Timestamp), TraceId, Timestamp)
${ttl_timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
ALTER TABLE `${database}`.`${table}_sorted_by_trace`
    DROP INDEX IF EXISTS idx_trace_id,
    DROP INDEX IF EXISTS idx_res_attr_key,
    DROP INDEX IF EXISTS idx_res_attr_value,
    DROP INDEX IF EXISTS idx_span_attr_key,
    DROP INDEX IF EXISTS idx_span_attr_value,
    MODIFY COLUMN ResourceAttributes CODEC(ZSTD(6)),
    MODIFY COLUMN SpanAttributes CODEC(ZSTD(6));
INSERT INTO `${database}`.`${table}_sorted_by_trace` SELECT * FROM `${database}`.`${table}`;
EXCHANGE TABLES `${database}`.`${table}` AND `${database}`.`${table}_sorted_by_trace`;
DROP TABLE `${database}`.`${table}_sorted_by_trace`
