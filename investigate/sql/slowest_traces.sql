-- The slowest navigations since {since_ns} (before {until_ns}, unless 0): navigation spans of
-- browsers, and the server's document, RSC navigation and API requests that no browser span
-- started (an app traced on the server only). A kind is the browser's navigation type
-- (document, soft, back, forward, traverse); a server-only request of kind rsc_navigation is a
-- soft one, and an API route's request is of kind api. A redirect (3xx) is no navigation: the
-- navigation goes on at its target. The route and service filters match the browser's or the
-- server's, the build the server's; empty filters match all.
WITH
    fromUnixTimestamp64Nano({since_ns:Int64}) AS since,
    if({until_ns:Int64} = 0, toDateTime64('2255-01-01', 9), fromUnixTimestamp64Nano({until_ns:Int64}))
        AS until
SELECT trace_id, name, root_service, duration_ns, start_ns, route, kind, build
FROM (
    (
        SELECT TraceId AS trace_id, SpanName AS name, ServiceName AS root_service,
               Duration AS duration_ns, toUnixTimestamp64Nano(Timestamp) AS start_ns,
               Route AS route, Attributes['nextrace.navigation.type'] AS kind, '' AS build
        FROM lifecycle_spans
        WHERE Phase = 'navigation' AND SpanName LIKE 'navigation %' AND IsRoot
          AND Timestamp >= since AND Timestamp < until
          AND (
              {route:String} = '' OR route = {route:String}
              -- or the server served it as that route: an intercepted soft navigation's
              -- browser route (/photos/[id]) is not the server's (/feed/(..)photos/[id])
              OR TraceId IN (
                  SELECT TraceId FROM requests
                  WHERE {route:String} != '' AND Route = {route:String} AND Timestamp >= since
              )
          )
          AND ({kind:String} = '' OR kind = {kind:String})
          AND (
              {service:String} = '' OR ServiceName = {service:String}
              OR TraceId IN (
                  SELECT TraceId FROM requests
                  WHERE {service:String} != '' AND ServiceName = {service:String}
                    AND Timestamp >= since
              )
          )
          AND (
              {build:String} = ''
              OR TraceId IN (
                  SELECT TraceId FROM requests
                  WHERE {build:String} != '' AND BuildId = {build:String} AND Timestamp >= since
              )
          )
        ORDER BY Duration DESC
        LIMIT {limit:UInt32}
    )
    UNION ALL
    (
        SELECT TraceId, concat(Method, ' ', Route), ServiceName, Duration,
               toUnixTimestamp64Nano(Timestamp), Route,
               if(Kind = 'rsc_navigation', 'soft', Kind) AS request_kind, BuildId
        FROM requests
        WHERE Sign = 1 AND Kind IN ('document', 'rsc_navigation', 'api')
          AND NOT (StatusCode BETWEEN 300 AND 399) AND Duration IS NOT NULL
          AND Timestamp >= since AND Timestamp < until
          AND ({route:String} = '' OR Route = {route:String})
          AND ({kind:String} = '' OR request_kind = {kind:String})
          AND ({service:String} = '' OR ServiceName = {service:String})
          AND ({build:String} = '' OR BuildId = {build:String})
          AND TraceId NOT IN (
              SELECT TraceId FROM lifecycle_spans
              WHERE Phase = 'navigation' AND SpanName LIKE 'navigation %' AND IsRoot
                AND Timestamp >= since
          )
        ORDER BY Duration DESC
        LIMIT {limit:UInt32}
    )
)
ORDER BY duration_ns DESC
LIMIT {limit:UInt32}
