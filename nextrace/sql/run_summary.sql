-- The run as a whole: its time window, the spans stored, and the spans the collector dropped
-- (its last counters per instance, summed over reasons).
SELECT
    (SELECT min(Timestamp) FROM otel_traces) AS first_span,
    (SELECT max(Timestamp + toIntervalNanosecond(Duration)) FROM otel_traces) AS last_span,
    timezone() AS time_zone,
    (SELECT count() FROM otel_traces) AS spans_stored,
    (
        SELECT sum(dropped)
        FROM (
            SELECT Instance, arraySum(mapValues(argMax(SpansDropped, Timestamp))) AS dropped
            FROM nextrace_collector_stats
            GROUP BY Instance
        )
    ) AS spans_dropped
