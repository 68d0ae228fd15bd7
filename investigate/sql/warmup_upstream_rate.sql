-- The busiest second of warm-up calls to upstream APIs: the "upstream call" events of fetch
-- spans in warm-up traces, stamped when a call really left (after the rate limiter); and the
-- limit the warm-ups said they keep to (nextrace.warmup.rate_per_s; 0 where none said).
SELECT
    max(calls) AS busiest_second,
    (
        SELECT max(toFloat64OrZero(SpanAttributes['nextrace.warmup.rate_per_s']))
        FROM otel_traces
        WHERE Phase = 'warmup' AND __WINDOW__
    ) AS rate_limit
FROM (
    SELECT toStartOfSecond(call_at) AS second, count() AS calls
    FROM otel_traces
    ARRAY JOIN Events.Timestamp AS call_at, Events.Name AS event
    WHERE event = 'upstream call' AND __WINDOW__
      AND TraceId IN (SELECT TraceId FROM otel_traces WHERE Phase = 'warmup')
    GROUP BY second
)
