-- Warm-ups failing or refused, per service and trigger: the share of warm-up jobs in the
-- evaluated range that ended in error or found the queue full (queue_full: a backlog).
-- Series with fewer than 5 jobs score 0.
SELECT service, trigger, failing
FROM (
    SELECT
        ServiceName AS service,
        Attributes['nextrace.warmup.trigger'] AS trigger,
        count() AS jobs,
        countIf(Attributes['nextrace.warmup.outcome'] IN ('error', 'queue_full')) AS bad,
        if(jobs >= 5, bad / jobs, 0) AS failing
    FROM lifecycle_spans
    WHERE $__timeFilter(Timestamp) AND Phase = 'warmup'
    GROUP BY service, trigger
)
ORDER BY service, trigger
