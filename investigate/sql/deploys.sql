-- Deploys, in order: when (as the server's time zone prints it, and in Unix milliseconds),
-- which build, and how many routes were warmed afterwards.
SELECT
    Timestamp AS at,
    toUnixTimestamp64Milli(Timestamp) AS at_ms,
    SpanAttributes['nextrace.build_id'] AS build_id,
    toUInt32OrZero(SpanAttributes['nextrace.deploy.warm_routes']) AS warm_routes
FROM otel_traces
WHERE Phase = 'deploy' AND __WINDOW__
ORDER BY at
