-- The warm-up queue: jobs by trigger and outcome, their average and worst wait.
SELECT
    SpanAttributes['nextrace.warmup.trigger'] AS trigger,
    SpanAttributes['nextrace.warmup.outcome'] AS outcome,
    count() AS jobs,
    round(avg(toFloat64OrZero(SpanAttributes['nextrace.warmup.queue_wait_ms'])), 1) AS avg_wait_ms,
    round(max(toFloat64OrZero(SpanAttributes['nextrace.warmup.queue_wait_ms'])), 1) AS max_wait_ms
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.phase'] = 'warmup'
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(SpanAttributes['nextrace.build_id'] IN (${build:singlequote}), $build)
GROUP BY trigger, outcome
ORDER BY trigger, outcome
