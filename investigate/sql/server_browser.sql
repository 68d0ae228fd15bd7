-- What browser clients that trace navigations and prefetches (@nextrace/next's, any service)
-- started, and how the router cache served the navigations.
SELECT
    countIf(Phase = 'navigation') AS navigations,
    countIf(Phase = 'prefetch') AS prefetches,
    countIf(Phase = 'navigation' AND Attributes['nextrace.navigation.router_cache'] = 'hit')
        AS router_hits,
    countIf(Phase = 'navigation' AND Attributes['nextrace.navigation.router_cache'] = 'partial')
        AS router_partial,
    countIf(Phase = 'navigation' AND Attributes['nextrace.navigation.router_cache'] = 'miss')
        AS router_misses
FROM lifecycle_spans
WHERE Phase IN ('navigation', 'prefetch') AND IsRoot AND __WINDOW__
