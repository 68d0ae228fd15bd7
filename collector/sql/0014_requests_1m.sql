-- Requests counted per minute by kind, for panels and alerts over long ranges. Filled from
-- requests by 0015 on every insert; read it with sum(Requests) ... GROUP BY.
CREATE TABLE IF NOT EXISTS `${database}`.`requests_1m` ${on_cluster} (
    Minute DateTime CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Route LowCardinality(String) CODEC(ZSTD(1)),
    BuildId LowCardinality(String) CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    Requests UInt64
) ENGINE = ${summing_engine}
PARTITION BY toDate(Minute)
ORDER BY (ServiceName, Minute, Kind, Route, BuildId)
${ttl_minute}
