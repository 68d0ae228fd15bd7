-- The warm-up queue: jobs by trigger and outcome, their average and worst wait.
SELECT
    Attributes['nextrace.warmup.trigger'] AS trigger,
    Attributes['nextrace.warmup.outcome'] AS outcome,
    count() AS jobs,
    round(avg(toFloat64OrZero(Attributes['nextrace.warmup.queue_wait_ms'])), 1) AS avg_wait_ms,
    round(max(toFloat64OrZero(Attributes['nextrace.warmup.queue_wait_ms'])), 1) AS max_wait_ms
FROM lifecycle_spans
WHERE $__timeFilter(Timestamp)
  AND Phase = 'warmup'
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY trigger, outcome
ORDER BY trigger, outcome
