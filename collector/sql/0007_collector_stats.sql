-- The collector's own counters, written every few seconds, so that its health can be graphed
-- and alerted on from the same store. Counters are cumulative per Instance (host, port, pid).
CREATE TABLE IF NOT EXISTS `${database}`.`nextrace_collector_stats` ${on_cluster} (
    Timestamp DateTime64(3) CODEC(Delta, ZSTD(1)),
    Instance LowCardinality(String),
    SpansReceived UInt64,
    SpansAccepted UInt64,
    SpansExported UInt64,
    QueueSpans UInt64,
    SpansDropped Map(LowCardinality(String), UInt64),
    RequestsRejected Map(LowCardinality(String), UInt64),
    ExportSeconds Float64,
    Exports UInt64
) ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Instance, Timestamp)
${ttl_timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
