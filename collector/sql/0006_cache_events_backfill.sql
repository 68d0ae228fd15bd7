-- A store that already held spans when 0005 arrived gets their cache events too. Runs once,
-- before the collector accepts traffic; rows the view already wrote are skipped.
INSERT INTO `${database}`.`cache_events`
SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['next.route'],
    SpanAttributes['cache.layer'],
    SpanAttributes['cache.result'],
    SpanAttributes['cache.miss_reason'],
    SpanAttributes['cache.key'],
    JSONExtract(SpanAttributes['cache.tags'], 'Array(String)'),
    SpanAttributes['cache.scope'],
    toFloat64OrZero(SpanAttributes['cache.entry.age_ms']),
    SpanAttributes['cache.entry.source'],
    SpanAttributes['cache.entry.source_trace_id'],
    SpanAttributes['nextrace.warmup.pending'] = 'true',
    SpanAttributes['nextrace.build_id']
FROM `${database}`.`${table}`
WHERE SpanAttributes['cache.layer'] != ''
  AND SpanId NOT IN (SELECT SpanId FROM `${database}`.`cache_events`)
