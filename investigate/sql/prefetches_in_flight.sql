-- The server's prefetch requests in flight while a navigation waited for the server, from
-- {wait_start_ns} to {wait_end_ns} (a prefetch lasts less than a minute).
WITH
    fromUnixTimestamp64Nano({wait_start_ns:Int64}) AS wait_start,
    fromUnixTimestamp64Nano({wait_end_ns:Int64}) AS wait_end
SELECT count() AS prefetches
FROM requests
WHERE Kind = 'rsc_prefetch'
  AND Timestamp >= wait_start - INTERVAL 1 MINUTE
  AND Timestamp < wait_end
  AND Timestamp + toIntervalNanosecond(Duration) > wait_start
