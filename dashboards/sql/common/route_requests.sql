-- One route's requests in the dashboard's time range, the slowest first: where a route's data
-- link opens Explore. ${route_clicked} is the cell's value, which Grafana fills into the link.
SELECT
    Timestamp AS started,
    TraceId AS trace_id,
    Route AS route,
    concat(Method, ' ', Path) AS request,
    Kind AS kind,
    StatusCode AS status,
    round(Duration / 1e6, 1) AS duration_ms,
    BuildId AS build,
    ServiceName AS service
FROM requests
WHERE $__timeFilter(Timestamp) AND Route = '${route_clicked}'
ORDER BY Duration DESC
LIMIT 500
