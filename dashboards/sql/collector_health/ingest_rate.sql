-- Spans stored per second, per collector instance (counters are cumulative per instance).
SELECT
    $__timeInterval(Timestamp) AS time,
    Instance AS instance,
    greatest(max(SpansExported) - min(SpansExported), 0) / $__interval_s AS spans_per_second
FROM nextrace_collector_stats
WHERE $__timeFilter(Timestamp)
GROUP BY time, instance
ORDER BY time, instance
