-- Data-cache misses of user traffic: on entries a warm-up had queued but not yet filled
-- (the race), and on entries no warm-up touched during the run.
WITH warmed AS (
    SELECT DISTINCT SpanAttributes['cache.key'] AS key
    FROM otel_traces
    WHERE SpanAttributes['cache.key'] != ''
      AND TraceId IN (
          SELECT TraceId FROM otel_traces WHERE Phase = 'warmup'
      )
)
SELECT
    count() AS misses,
    countIf(SpanAttributes['nextrace.warmup.pending'] = 'true') AS raced,
    countIf(
        SpanAttributes['nextrace.warmup.pending'] != 'true'
        AND SpanAttributes['cache.key'] NOT IN (SELECT key FROM warmed)
    ) AS never_warmed
FROM otel_traces
WHERE SpanAttributes['cache.layer'] = 'data'
  AND SpanAttributes['cache.result'] IN ('miss', 'stale')
  AND TraceId IN (__USER_TRACES__)
  AND __WINDOW__
