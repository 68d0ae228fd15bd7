-- Lookups in the given layers around each deploy {bounds_ns} (Unix ns, in order), from
-- `cache_events`, counted exactly (not in buckets, which would straddle a deploy): `period` is
-- how many deploys came at or before the lookup (0: before the first); `in_spike`, whether it
-- came within {window_s} s after that deploy; `before_next`, within {window_s} s before the
-- next one. Misses are misses and revalidated entries; cold ones missed an entry the new build
-- lacked (reason deploy).
WITH
    toUnixTimestamp64Nano(Timestamp) AS t,
    {bounds_ns:Array(Int64)} AS bounds,
    toInt64({window_s:Float64} * 1e9) AS window_ns,
    arrayCount(b -> b <= t, bounds) AS period
SELECT
    period,
    period > 0 AND t < bounds[period] + window_ns AS in_spike,
    period < length(bounds) AND t >= bounds[period + 1] - window_ns AS before_next,
    sumIf(Sign, Result != 'bypass') AS lookups,
    sumIf(Sign, Result IN ('miss', 'revalidated')) AS misses,
    sumIf(Sign, Result IN ('miss', 'revalidated') AND Reason = 'deploy') AS cold
FROM cache_events
WHERE Layer IN {layers:Array(String)} AND __WINDOW__
GROUP BY period, in_spike, before_next
ORDER BY period, in_spike, before_next
