-- Cache lookups of user traffic per layer and time bucket, for the hit-ratio plot.
SELECT
    toUnixTimestamp64Milli(toStartOfInterval(Timestamp, toIntervalMillisecond({bucket_ms:UInt32})))
        AS bucket_ms,
    SpanAttributes['cache.layer'] AS layer,
    countIf(SpanAttributes['cache.result'] IN ('hit', 'stale')) AS served,
    count() AS lookups
FROM otel_traces
WHERE SpanAttributes['cache.layer'] != ''
  AND SpanAttributes['cache.result'] != 'bypass'
  AND TraceId IN (__USER_TRACES__)
  AND __WINDOW__
GROUP BY bucket_ms, layer
ORDER BY bucket_ms, layer
