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
-- An existing table is copied into the new one and the two exchanged, so nothing stored is
-- lost: writers (a contrib exporter sharing the store) must be stopped while this runs. Run
-- again after a crash at any step, it starts over from what otel_traces holds then, which is
-- always every span. On a cluster it does not run (see collector/migrations.py): copying one
-- node's rows would drop the other shards'.
DROP TABLE IF EXISTS `${database}`.`${table}_sorted_by_trace`;
CREATE TABLE `${database}`.`${table}_sorted_by_trace` (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(6)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(6)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Phase LowCardinality(String)
        MATERIALIZED SpanAttributes['nextrace.phase'] CODEC(ZSTD(1)),
    NextSpanType LowCardinality(String)
        MATERIALIZED SpanAttributes['next.span_type'] CODEC(ZSTD(1)),
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFifteenMinutes(Timestamp), TraceId, Timestamp)
${ttl_timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
INSERT INTO `${database}`.`${table}_sorted_by_trace` SELECT * FROM `${database}`.`${table}`;
EXCHANGE TABLES `${database}`.`${table}` AND `${database}`.`${table}_sorted_by_trace`;
DROP TABLE `${database}`.`${table}_sorted_by_trace`
