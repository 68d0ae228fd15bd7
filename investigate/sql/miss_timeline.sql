-- Cache lookups of user traffic in the given layers, per time bucket: how many missed, and
-- how many of those were cold because a deploy had emptied the entry.
SELECT
    toStartOfInterval(Timestamp, toIntervalMillisecond({bucket_ms:UInt32})) AS bucket,
    count() AS lookups,
    countIf(SpanAttributes['cache.result'] IN ('miss', 'revalidated')) AS misses,
    countIf(SpanAttributes['cache.miss_reason'] = 'deploy') AS cold
FROM otel_traces
WHERE SpanAttributes['cache.layer'] IN {layers:Array(String)}
  AND SpanAttributes['cache.result'] != 'bypass'
  AND TraceId IN (__USER_TRACES__)
  AND __WINDOW__
GROUP BY bucket
ORDER BY bucket
