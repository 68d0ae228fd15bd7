-- The run as a whole, in the report's window: its first and last span, the spans stored, and
-- the spans the collector dropped (per instance, its cumulative counters' last value before
-- the window's end less their last value before its start, summed over reasons).
SELECT
    (SELECT min(Timestamp) FROM otel_traces WHERE __WINDOW__) AS first_span,
    (SELECT max(Timestamp + toIntervalNanosecond(Duration)) FROM otel_traces WHERE __WINDOW__)
        AS last_span,
    timezone() AS time_zone,
    (SELECT count() FROM otel_traces WHERE __WINDOW__) AS spans_stored,
    (
        SELECT sum(dropped)
        FROM (
            SELECT
                Instance,
                arraySum(mapValues(argMaxIf(
                    SpansDropped, Timestamp,
                    Timestamp < fromUnixTimestamp64Nano({until_ns:Int64})
                )))
                - arraySum(mapValues(argMaxIf(
                    SpansDropped, Timestamp,
                    Timestamp < fromUnixTimestamp64Nano({since_ns:Int64})
                ))) AS dropped
            FROM nextrace_collector_stats
            GROUP BY Instance
        )
    ) AS spans_dropped
