-- Cache lookups counted per minute, for panels and alerts over long ranges. Filled from
-- cache_events by 0012 on every insert (late rows add to their own minute), and summed by
-- the engine as parts merge: always read it with sum(Lookups) ... GROUP BY.
CREATE TABLE IF NOT EXISTS `${database}`.`cache_events_1m` ${on_cluster} (
    Minute DateTime CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Layer LowCardinality(String) CODEC(ZSTD(1)),
    Route LowCardinality(String) CODEC(ZSTD(1)),
    BuildId LowCardinality(String) CODEC(ZSTD(1)),
    Result LowCardinality(String) CODEC(ZSTD(1)),
    Reason LowCardinality(String) CODEC(ZSTD(1)),
    Lookups UInt64
) ENGINE = ${summing_engine}
PARTITION BY toDate(Minute)
ORDER BY (Layer, ServiceName, Minute, Route, BuildId, Result, Reason)
${ttl_minute}
