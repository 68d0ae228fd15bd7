-- How much server and middleware work prefetches caused: spans in traces that a browser
-- started as a prefetch, against all user traffic.
WITH prefetch_traces AS (
    SELECT TraceId FROM otel_traces
    WHERE ServiceName = {browser_service:String} AND Phase = 'prefetch'
)
SELECT
    countIf(Phase = 'request') AS requests,
    countIf(Phase = 'request' AND TraceId IN prefetch_traces)
        AS prefetch_requests,
    sumIf(Duration, Phase = 'request') AS request_ns,
    sumIf(Duration, Phase = 'request' AND TraceId IN prefetch_traces)
        AS prefetch_request_ns,
    countIf(Phase = 'middleware') AS middleware_runs,
    countIf(Phase = 'middleware' AND TraceId IN prefetch_traces)
        AS prefetch_middleware_runs,
    sumIf(Duration, Phase = 'middleware') AS middleware_ns,
    sumIf(Duration, Phase = 'middleware' AND TraceId IN prefetch_traces)
        AS prefetch_middleware_ns
FROM otel_traces
WHERE ServiceName != {browser_service:String}
  AND TraceId IN (__USER_TRACES__)
  AND __WINDOW__
