-- Cache lookups of user traffic per layer and period; periods are split at {bounds}.
-- A stale entry is served from cache, so it counts with the hits. Every CDN lookup counts: a
-- CDN answers most requests without the app, so its hits belong to no trace of the users'
-- (a CDN log line joins one only when it logged the trace), as the dashboards count them.
SELECT
    arrayCount(b -> b <= Timestamp, {bounds:Array(DateTime64(9))}) AS period,
    SpanAttributes['cache.layer'] AS layer,
    countIf(SpanAttributes['cache.result'] IN ('hit', 'stale')) AS served,
    countIf(SpanAttributes['cache.result'] IN ('miss', 'revalidated')) AS misses
FROM otel_traces
WHERE SpanAttributes['cache.layer'] != ''
  AND SpanAttributes['cache.result'] != 'bypass'
  AND (TraceId IN (__USER_TRACES__) OR SpanAttributes['cache.layer'] = 'cdn')
  AND __WINDOW__
GROUP BY period, layer
ORDER BY period, layer
