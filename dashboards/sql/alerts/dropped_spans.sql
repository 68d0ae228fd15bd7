-- Spans dropped, per collector instance, in the evaluated range: any is too many.
SELECT
    Instance AS instance,
    toFloat64(max(arraySum(mapValues(SpansDropped))) - min(arraySum(mapValues(SpansDropped))))
        AS dropped
FROM nextrace_collector_stats
WHERE $__timeFilter(Timestamp)
GROUP BY instance
ORDER BY instance
