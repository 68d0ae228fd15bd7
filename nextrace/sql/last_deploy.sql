-- The last deploy at or before {before_ns}: when, and which build it switched to.
SELECT
    toUnixTimestamp64Nano(max(Timestamp)) AS at_ns,
    argMax(SpanAttributes['nextrace.build_id'], Timestamp) AS build
FROM otel_traces
WHERE SpanName = 'deploy' AND Phase = 'deploy'
  AND Timestamp <= fromUnixTimestamp64Nano({before_ns:Int64})
