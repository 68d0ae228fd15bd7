-- Per route, the server's prefetch requests and navigation requests (documents and RSC
-- navigations): in a prefetch storm, the routes that take most of the prefetches are the
-- links that cause it.
SELECT
    Route AS route,
    sumIf(Sign, Kind = 'rsc_prefetch') AS prefetches,
    sumIf(Sign, Kind IN ('document', 'rsc_navigation')) AS navigations
FROM requests
WHERE Route != '' AND __WINDOW__
GROUP BY route
HAVING prefetches > 0 OR navigations > 0
ORDER BY prefetches DESC, route
