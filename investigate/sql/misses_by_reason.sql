-- Every miss and stale hit of user traffic, per cache layer and reason: nothing unexplained
-- (a miss whose producer does not say why counts under "unknown").
SELECT
    SpanAttributes['cache.layer'] AS layer,
    SpanAttributes['cache.result'] AS result,
    if(SpanAttributes['cache.miss_reason'] = '', 'unknown', SpanAttributes['cache.miss_reason'])
        AS reason,
    countIf(SpanAttributes['nextrace.warmup.pending'] = 'true') AS warmup_pending,
    count() AS lookups
FROM otel_traces
WHERE SpanAttributes['cache.result'] IN ('miss', 'stale', 'revalidated')
  AND SpanAttributes['cache.layer'] != ''
  AND TraceId IN (__USER_TRACES__)
  AND __WINDOW__
GROUP BY layer, result, reason
ORDER BY layer, lookups DESC
