-- Sequential fetches: each waited for another fetch before it started (the waterfall). The
-- reference server names the fetch each one waited for (nextrace.fetch.after, kept in
-- lifecycle_spans); for a Next.js service it is read from timing: the fetch of the same trace
-- that ended last before this one started (ASOF JOIN), so fetches that ran in parallel are not
-- a waterfall. Next.js's own fetch spans are told by two narrow columns (the reference server's
-- have a phase), not by ScopeName, a plain string column as long as the range. Only a request span names its route and (for Next.js) its build, so a route or
-- a build is chosen by the traces of its requests.
SELECT
    fetch,
    waited_for,
    count() AS times,
    round(avg(duration_ns) / 1e6, 1) AS avg_ms
FROM (
    SELECT
        SpanName AS fetch,
        Attributes['nextrace.fetch.after'] AS waited_for,
        Duration AS duration_ns
    FROM lifecycle_spans
    WHERE $__timeFilter(Timestamp)
      AND Phase = 'fetch'
      AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
      AND $__conditionalAll(
          TraceId IN (SELECT TraceId FROM requests WHERE $__timeFilter(Timestamp) AND Route IN (${route:singlequote})),
          $route)
      AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
    UNION ALL
    SELECT
        later.SpanName AS fetch,
        earlier.SpanName AS waited_for,
        later.Duration AS duration_ns
    FROM (
        SELECT TraceId, SpanName, Timestamp, Duration
        FROM otel_traces
        WHERE $__timeFilter(Timestamp)
          AND NextSpanType = 'AppRender.fetch'
          AND Phase = ''
          AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
          AND $__conditionalAll(
              TraceId IN (SELECT TraceId FROM requests WHERE $__timeFilter(Timestamp) AND Route IN (${route:singlequote})),
              $route)
          AND $__conditionalAll(
              TraceId IN (SELECT TraceId FROM requests WHERE $__timeFilter(Timestamp) AND BuildId IN (${build:singlequote})),
              $build)
    ) AS later
    ASOF INNER JOIN (
        SELECT TraceId, SpanName, Timestamp + toIntervalNanosecond(Duration) AS ended
        FROM otel_traces
        WHERE $__timeFilter(Timestamp)
          AND NextSpanType = 'AppRender.fetch'
          AND Phase = ''
          AND Duration > 0
          AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
    ) AS earlier
    ON later.TraceId = earlier.TraceId AND later.Timestamp >= earlier.ended
)
GROUP BY fetch, waited_for
ORDER BY times DESC, fetch
