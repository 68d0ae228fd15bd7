-- A store that already held request spans when 0009 arrived gets their rows too. Runs once,
-- before the collector accepts traffic. (Next.js traces stored before 0010 are not
-- normalized: their grouping happens as they arrive.)
INSERT INTO `${database}`.`requests`
SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['next.route'],
    SpanAttributes['nextrace.request.kind'],
    'attribute',
    SpanAttributes['next.prefetch'],
    SpanAttributes['http.request.method'],
    SpanAttributes['url.path'],
    toUInt16OrZero(SpanAttributes['http.response.status_code']),
    Duration,
    toFloat64OrNull(SpanAttributes['nextrace.stream.ttfb_ms']),
    NULL,
    NULL,
    SpanAttributes['nextrace.build_id'],
    'nextrace'
FROM `${database}`.`${table}`
WHERE SpanAttributes['nextrace.phase'] = 'request'
  AND SpanId NOT IN (SELECT SpanId FROM `${database}`.`requests`)
