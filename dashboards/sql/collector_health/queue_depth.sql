-- Spans accepted but not yet stored, at their highest in each interval.
SELECT
    $__timeInterval(Timestamp) AS time,
    Instance AS instance,
    max(QueueSpans) AS queued_spans
FROM nextrace_collector_stats
WHERE $__timeFilter(Timestamp)
GROUP BY time, instance
ORDER BY time, instance
