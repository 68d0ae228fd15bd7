-- How much server and middleware work prefetches caused: spans in traces that a browser
-- started as a prefetch, against all user traffic.
WITH prefetch_traces AS (
    SELECT TraceId FROM otel_traces
    WHERE ServiceName = {browser_service:String} AND SpanAttributes['nextrace.phase'] = 'prefetch'
)
SELECT
    countIf(SpanAttributes['nextrace.phase'] = 'request') AS requests,
    countIf(SpanAttributes['nextrace.phase'] = 'request' AND TraceId IN prefetch_traces)
        AS prefetch_requests,
    sumIf(Duration, SpanAttributes['nextrace.phase'] = 'request') AS request_ns,
    sumIf(Duration, SpanAttributes['nextrace.phase'] = 'request' AND TraceId IN prefetch_traces)
        AS prefetch_request_ns,
    countIf(SpanAttributes['nextrace.phase'] = 'middleware') AS middleware_runs,
    countIf(SpanAttributes['nextrace.phase'] = 'middleware' AND TraceId IN prefetch_traces)
        AS prefetch_middleware_runs,
    sumIf(Duration, SpanAttributes['nextrace.phase'] = 'middleware') AS middleware_ns,
    sumIf(Duration, SpanAttributes['nextrace.phase'] = 'middleware' AND TraceId IN prefetch_traces)
        AS prefetch_middleware_ns
FROM otel_traces
WHERE ServiceName != {browser_service:String}
  AND TraceId IN (__USER_TRACES__)
