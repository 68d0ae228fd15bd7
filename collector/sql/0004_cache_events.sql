-- One narrow row per cache interaction, for dashboards that must stay fast at scale.
-- Filled from otel_traces by 0005_cache_events_mv.sql on every insert, so late and
-- out-of-order spans land like any others.
CREATE TABLE IF NOT EXISTS `${database}`.`cache_events` ${on_cluster} (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Route LowCardinality(String) CODEC(ZSTD(1)),
    Layer LowCardinality(String) CODEC(ZSTD(1)),
    Result LowCardinality(String) CODEC(ZSTD(1)),
    Reason LowCardinality(String) CODEC(ZSTD(1)),
    Key String CODEC(ZSTD(1)),
    Tags Array(String) CODEC(ZSTD(1)),
    Scope LowCardinality(String) CODEC(ZSTD(1)),
    EntryAgeMs Float64 CODEC(ZSTD(1)),
    EntrySource LowCardinality(String) CODEC(ZSTD(1)),
    EntrySourceTraceId String CODEC(ZSTD(1)),
    WarmupPending Bool,
    BuildId LowCardinality(String) CODEC(ZSTD(1))
) ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Layer, ServiceName, toStartOfMinute(Timestamp), Timestamp)
${ttl_timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
