-- A typical fast peer of a trace: another trace of the same service {service}, route {route}
-- and request kind {kind} (requests.Kind: document, rsc_navigation, rsc_prefetch, …), at the
-- 25th percentile of their durations (one pass: sorted by duration, then picked). A browser's
-- navigation ({browser}) is compared with other browser navigations of that navigation type
-- ({navigation_type}, any when empty) whose request is of that service, route and kind, or,
-- for one the router cache answered without a request ({kind} empty), with the browser
-- service's other such navigations of the route; a server's request with other server
-- requests that no browser navigation started. A redirect (3xx) is nobody's peer.
SELECT
    by_duration[toUInt32(floor((length(by_duration) - 1) * 0.25)) + 1].2 AS trace_id,
    length(by_duration) AS peers
FROM (
    SELECT arraySort(x -> x.1, groupArray((duration_ns, peer))) AS by_duration
    FROM (
        SELECT Duration AS duration_ns, TraceId AS peer
        FROM lifecycle_spans
        WHERE {browser:Bool} AND Phase = 'navigation' AND IsRoot
          AND (
              {navigation_type:String} = ''
              OR Attributes['nextrace.navigation.type'] = {navigation_type:String}
          )
          AND if(
              {kind:String} = '',
              ServiceName = {service:String} AND Route = {route:String}
                  AND TraceId NOT IN (SELECT TraceId FROM requests WHERE Sign = 1),
              TraceId IN (
                  SELECT TraceId FROM requests
                  WHERE Sign = 1 AND ServiceName = {service:String} AND Route = {route:String}
                    AND Kind = {kind:String} AND NOT (StatusCode BETWEEN 300 AND 399)
              )
          )
        UNION ALL
        SELECT max(Duration), TraceId
        FROM requests
        WHERE NOT {browser:Bool} AND Sign = 1
          AND ServiceName = {service:String} AND Route = {route:String} AND Kind = {kind:String}
          AND NOT (StatusCode BETWEEN 300 AND 399)
          AND TraceId NOT IN (SELECT TraceId FROM lifecycle_spans WHERE Phase = 'navigation' AND IsRoot)
        GROUP BY TraceId
    )
    WHERE peer != {trace_id:String}
)
