-- The spans of the lifecycle's sparse phases (navigations, prefetches, middleware, warm-ups,
-- revalidations, deploys, and fetches that waited for another: about a fifth of the reference
-- server's spans), narrow and sorted by phase, with the attributes of their own phase only
-- (nextrace.<phase>.*, docs/semantic-conventions.md). A span here says whether it is its
-- trace's root instead of naming its parent: random ids are most of a narrow table's bytes.
-- Their panels and alerts read this instead of otel_traces, where each would read the whole
-- attribute map of every span near the ones it wants. Filled by 0023 on every insert.
CREATE TABLE IF NOT EXISTS `${database}`.`lifecycle_spans` ${on_cluster} (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    IsRoot Bool,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    Phase LowCardinality(String) CODEC(ZSTD(1)),
    Route LowCardinality(String) CODEC(ZSTD(1)),
    BuildId LowCardinality(String) CODEC(ZSTD(1)),
    RequestKind LowCardinality(String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1))
) ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Phase, ServiceName, toStartOfMinute(Timestamp), Timestamp)
${ttl_timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000
