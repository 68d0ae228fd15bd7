-- Prefetch amplification, per service: prefetches per navigation in the last 5 minutes as a
-- multiple of the same ratio over the rest of the evaluated range. Services with fewer than
-- 10 navigations in either window score 0. Reads `requests`: the reference server's and
-- real Next.js apps' requests alike.
SELECT service, amplification
FROM (
    SELECT
        ServiceName AS service,
        countIf(Timestamp >= $__toTime - INTERVAL {recent_s} SECOND AND Kind = 'rsc_prefetch') AS recent_prefetches,
        countIf(Timestamp >= $__toTime - INTERVAL {recent_s} SECOND AND Kind != 'rsc_prefetch') AS recent_navigations,
        countIf(Timestamp < $__toTime - INTERVAL {recent_s} SECOND AND Kind = 'rsc_prefetch') AS baseline_prefetches,
        countIf(Timestamp < $__toTime - INTERVAL {recent_s} SECOND AND Kind != 'rsc_prefetch') AS baseline_navigations,
        if(recent_navigations >= 10 AND baseline_navigations >= 10,
           (recent_prefetches / recent_navigations)
               / greatest(baseline_prefetches / baseline_navigations, 0.5),
           0) AS amplification
    FROM requests
    WHERE $__timeFilter(Timestamp)
      AND Kind IN ('rsc_prefetch', 'rsc_navigation', 'document')
    GROUP BY service
)
ORDER BY service
