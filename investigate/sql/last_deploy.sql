-- The last deploy at or before {before_ns}: when, and which build it switched to.
SELECT
    toUnixTimestamp64Nano(max(Timestamp)) AS at_ns,
    argMax(BuildId, Timestamp) AS build
FROM lifecycle_spans
WHERE Phase = 'deploy' AND SpanName = 'deploy'
  AND Timestamp <= fromUnixTimestamp64Nano({before_ns:Int64})
