-- Average time of one ClickHouse insert in each interval.
SELECT
    $__timeInterval(Timestamp) AS time,
    Instance AS instance,
    (max(ExportSeconds) - min(ExportSeconds)) * 1000
        / greatest(max(Exports) - min(Exports), 1) AS insert_ms
FROM nextrace_collector_stats
WHERE $__timeFilter(Timestamp)
GROUP BY time, instance
ORDER BY time, instance
