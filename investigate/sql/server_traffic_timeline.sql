-- The server's prefetch and navigation requests (document and RSC navigation) per time bucket.
SELECT
    toUnixTimestamp64Milli(toStartOfInterval(Timestamp, toIntervalMillisecond({bucket_ms:UInt32})))
        AS bucket_ms,
    sumIf(Sign, Kind = 'rsc_prefetch') AS prefetches,
    sumIf(Sign, Kind IN ('document', 'rsc_navigation')) AS navigations
FROM requests
WHERE __WINDOW__
GROUP BY bucket_ms
ORDER BY bucket_ms
