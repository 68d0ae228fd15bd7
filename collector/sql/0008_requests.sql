-- One row per request, from either source: the reference server's request spans (through
-- 0009_requests_mv.sql) and real Next.js traces (normalized by the collector, see
-- collector/nextjs/mapping.py). Request-level panels read this instead of scanning raw spans.
CREATE TABLE IF NOT EXISTS `${database}`.`requests` ${on_cluster} (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Route LowCardinality(String) CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    KindSource LowCardinality(String) CODEC(ZSTD(1)),
    Prefetch LowCardinality(String) CODEC(ZSTD(1)),
    Method LowCardinality(String) CODEC(ZSTD(1)),
    Path String CODEC(ZSTD(1)),
    StatusCode UInt16,
    Duration UInt64 CODEC(ZSTD(1)),
    TtfbMs Nullable(Float64) CODEC(ZSTD(1)),
    RenderMs Nullable(Float64) CODEC(ZSTD(1)),
    MiddlewareMs Nullable(Float64) CODEC(ZSTD(1)),
    BuildId LowCardinality(String) CODEC(ZSTD(1)),
    Source LowCardinality(String) CODEC(ZSTD(1))
) ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Kind, toStartOfMinute(Timestamp), Timestamp)
${ttl_timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
