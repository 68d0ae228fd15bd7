-- Cold-cache spike, per service, build and layer: the miss ratio of the last {recent_s} seconds
-- against the rest of the evaluated range (the recent baseline). The value is how far the
-- recent ratio rose above twice the baseline; series with fewer than 20 recent lookups score 0,
-- so a trickle cannot page anyone. The baseline is the service's and layer's over every build:
-- a build deployed a minute ago has none of its own, and its cold start is what should fire.
-- String columns (the labels) and one number, as Grafana alerting reads tables.
SELECT service, build, layer, spike
FROM (
    SELECT
        service,
        build,
        layer,
        recent_misses / nullIf(recent_lookups, 0) AS recent_ratio,
        sum(baseline_misses) OVER (PARTITION BY service, layer)
            / nullIf(sum(baseline_lookups) OVER (PARTITION BY service, layer), 0) AS baseline_ratio,
        if(recent_lookups >= 20,
           greatest(ifNull(recent_ratio, 0) - 2 * ifNull(baseline_ratio, 0), 0), 0) AS spike
    FROM (
        WITH Timestamp >= $__toTime - INTERVAL {recent_s} SECOND AS recent
        SELECT
            ServiceName AS service,
            BuildId AS build,
            Layer AS layer,
            countIf(recent) AS recent_lookups,
            countIf(recent AND Result IN ('miss', 'revalidated')) AS recent_misses,
            countIf(NOT recent) AS baseline_lookups,
            countIf(NOT recent AND Result IN ('miss', 'revalidated')) AS baseline_misses
        FROM cache_events
        WHERE $__timeFilter(Timestamp)
          AND Result != 'bypass'
          AND (Layer IN ('cdn', 'full_route', 'data') OR startsWith(Layer, 'use_cache'))
        GROUP BY service, build, layer
    )
)
ORDER BY service, build, layer
