-- Sequential fetches: each waited for another fetch before it started (the waterfall).
SELECT
    SpanName AS fetch,
    SpanAttributes['nextrace.fetch.after'] AS waited_for,
    count() AS times,
    round(avg(Duration) / 1e6, 1) AS avg_ms
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.fetch.after'] != ''
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(SpanAttributes['nextrace.build_id'] IN (${build:singlequote}), $build)
GROUP BY fetch, waited_for
ORDER BY times DESC, fetch
