-- Prefetches and navigations the browsers started, per time bucket.
SELECT
    toUnixTimestamp64Milli(toStartOfInterval(Timestamp, toIntervalMillisecond({bucket_ms:UInt32})))
        AS bucket_ms,
    countIf(Phase = 'prefetch') AS prefetches,
    countIf(Phase = 'navigation') AS navigations
FROM otel_traces
WHERE ServiceName = {browser_service:String} AND __WINDOW__
GROUP BY bucket_ms
ORDER BY bucket_ms
