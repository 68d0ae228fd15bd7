-- Spans dropped and requests refused in the time range, by reason.
SELECT what, reason, sum(increase) AS count
FROM (
    SELECT
        'spans dropped' AS what,
        reason,
        max(SpansDropped[reason]) - min(SpansDropped[reason]) AS increase
    FROM nextrace_collector_stats
    ARRAY JOIN mapKeys(SpansDropped) AS reason
    WHERE $__timeFilter(Timestamp)
    GROUP BY Instance, reason
    UNION ALL
    SELECT
        'requests refused' AS what,
        reason,
        max(RequestsRejected[reason]) - min(RequestsRejected[reason]) AS increase
    FROM nextrace_collector_stats
    ARRAY JOIN mapKeys(RequestsRejected) AS reason
    WHERE $__timeFilter(Timestamp)
    GROUP BY Instance, reason
)
GROUP BY what, reason
HAVING count > 0
ORDER BY what, count DESC, reason
