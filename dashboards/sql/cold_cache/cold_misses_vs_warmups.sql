-- Cold misses (entries a deploy emptied, or never filled) against warm-up jobs by outcome.
-- The misses come from cache_events, which both the reference server and real Next.js apps
-- fill; the warm-ups from their spans (the reference server's, or @nextrace/next's).
SELECT
    time,
    sum(cold) AS cold_misses,
    sum(ok) AS warmups_ok,
    sum(failed) AS warmups_failed,
    sum(queue_full) AS warmups_queue_full,
    sum(deduplicated) AS warmups_deduplicated
FROM (
    SELECT
        $__timeInterval(Timestamp) AS time,
        count() AS cold,
        0 AS ok, 0 AS failed, 0 AS queue_full, 0 AS deduplicated
    FROM cache_events
    WHERE $__timeFilter(Timestamp)
      AND Result = 'miss'
      AND Reason IN ('cold', 'deploy')
      AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
      AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
    GROUP BY time
    UNION ALL
    SELECT
        $__timeInterval(Timestamp) AS time,
        0 AS cold,
        countIf(Attributes['nextrace.warmup.outcome'] = 'ok') AS ok,
        countIf(Attributes['nextrace.warmup.outcome'] = 'error') AS failed,
        countIf(Attributes['nextrace.warmup.outcome'] = 'queue_full') AS queue_full,
        countIf(Attributes['nextrace.warmup.outcome'] = 'deduplicated') AS deduplicated
    FROM lifecycle_spans
    WHERE $__timeFilter(Timestamp)
      AND Phase = 'warmup'
      AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
      AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
    GROUP BY time
)
GROUP BY time
ORDER BY time
