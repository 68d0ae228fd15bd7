-- Spans and their time per minute, service and lifecycle phase: the reference server's
-- nextrace.phase, or for Next.js's own spans the phase of their span type (as
-- docs/semantic-conventions.md maps them). The time-per-phase panel reads this over long ranges
-- instead of the Phase and Duration of every span. Filled from otel_traces by 0030; read it
-- with sum(Spans), sum(DurationNs) ... GROUP BY.
CREATE TABLE IF NOT EXISTS `${database}`.`phase_time_1m` ${on_cluster} (
    Minute DateTime CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Phase LowCardinality(String) CODEC(ZSTD(1)),
    Spans UInt64,
    DurationNs UInt64
) ENGINE = ${summing_engine}
PARTITION BY toDate(Minute)
ORDER BY (Phase, ServiceName, Minute)
${ttl_minute}
SETTINGS non_replicated_deduplication_window = 1000
