-- Cold-cache spike, per layer: the miss ratio of the last {recent_s} seconds against the rest of the
-- evaluated range (the recent baseline). The value is how far the recent ratio rose above twice
-- the baseline; layers with fewer than 20 recent lookups score 0, so a trickle cannot page
-- anyone. One string column (the label) and one number, as Grafana alerting reads tables.
SELECT layer, spike
FROM (
    SELECT
        Layer AS layer,
        countIf(Timestamp >= $__toTime - INTERVAL {recent_s} SECOND) AS recent_lookups,
        countIf(Timestamp >= $__toTime - INTERVAL {recent_s} SECOND AND Result IN ('miss', 'revalidated'))
            / nullIf(recent_lookups, 0) AS recent_ratio,
        countIf(Timestamp < $__toTime - INTERVAL {recent_s} SECOND AND Result IN ('miss', 'revalidated'))
            / nullIf(countIf(Timestamp < $__toTime - INTERVAL {recent_s} SECOND), 0) AS baseline_ratio,
        if(recent_lookups >= 20,
           greatest(ifNull(recent_ratio, 0) - 2 * ifNull(baseline_ratio, 0), 0), 0) AS spike
    FROM cache_events
    WHERE $__timeFilter(Timestamp)
      AND Result != 'bypass'
      AND Layer IN ('cdn', 'full_route', 'data')
    GROUP BY layer
)
ORDER BY layer
