-- Cold misses (entries a deploy emptied, or never filled) against warm-up jobs by outcome.
SELECT
    $__timeInterval(Timestamp) AS time,
    countIf(SpanAttributes['cache.layer'] != ''
            AND SpanAttributes['cache.miss_reason'] IN ('cold', 'deploy')
            AND SpanAttributes['cache.result'] = 'miss') AS cold_misses,
    countIf(SpanAttributes['nextrace.warmup.outcome'] = 'ok') AS warmups_ok,
    countIf(SpanAttributes['nextrace.warmup.outcome'] = 'error') AS warmups_failed,
    countIf(SpanAttributes['nextrace.warmup.outcome'] = 'queue_full') AS warmups_queue_full,
    countIf(SpanAttributes['nextrace.warmup.outcome'] = 'deduplicated') AS warmups_deduplicated
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(SpanAttributes['nextrace.build_id'] IN (${build:singlequote}), $build)
GROUP BY time
ORDER BY time
