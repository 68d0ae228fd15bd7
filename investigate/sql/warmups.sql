-- Warm-up jobs by trigger and outcome, and the upstream calls they made per second at most.
SELECT
    SpanAttributes['nextrace.warmup.trigger'] AS trigger,
    SpanAttributes['nextrace.warmup.outcome'] AS outcome,
    count() AS jobs,
    round(avg(toFloat64OrZero(SpanAttributes['nextrace.warmup.queue_wait_ms'])), 1) AS avg_wait_ms
FROM otel_traces
WHERE Phase = 'warmup' AND __WINDOW__
GROUP BY trigger, outcome
ORDER BY trigger, outcome
