-- The app's own requests (not a CDN's) of the given services and paths in a time range, each
-- with its route and its request span's parent: what a CDN's log line that logged no trace id
-- is joined to (collector/ingest/cdn.py, join_to_app). The parent is what a logged traceparent would have
-- named, so the CDN's lookup joins the trace beside the request, as it does then.
WITH near AS (
    SELECT TraceId, SpanId, ServiceName, Path, Route, Timestamp
    FROM `${database}`.`requests`
    WHERE Timestamp BETWEEN fromUnixTimestamp64Nano({first_ns:Int64})
                        AND fromUnixTimestamp64Nano({last_ns:Int64})
      AND Source != 'cdn' AND Sign = 1
      AND ServiceName IN {services:Array(String)}
      AND Path IN {paths:Array(String)}
)
SELECT near.TraceId, near.SpanId, spans.ParentSpanId, near.ServiceName, near.Path,
       toUnixTimestamp64Nano(near.Timestamp), near.Route
FROM near
LEFT JOIN (
    SELECT TraceId, SpanId, ParentSpanId
    FROM `${database}`.`${table}`
    WHERE Timestamp BETWEEN fromUnixTimestamp64Nano({first_ns:Int64})
                        AND fromUnixTimestamp64Nano({last_ns:Int64})
      AND TraceId IN (SELECT TraceId FROM near)
) AS spans USING (TraceId, SpanId)
