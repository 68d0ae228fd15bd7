-- Cache lookups per layer and time bucket from `cache_events`, for the hit-ratio plot.
SELECT
    toUnixTimestamp64Milli(toStartOfInterval(Timestamp, toIntervalMillisecond({bucket_ms:UInt32})))
        AS bucket_ms,
    Layer AS layer,
    sumIf(Sign, Result IN ('hit', 'stale')) AS served,
    sumIf(Sign, Result != 'bypass') AS lookups
FROM cache_events
WHERE Layer != '' AND __WINDOW__
GROUP BY bucket_ms, layer
ORDER BY bucket_ms, layer
