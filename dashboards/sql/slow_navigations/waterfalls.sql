-- Sequential fetches: each waited for another fetch before it started (the waterfall). The
-- reference server names the fetch each one waited for (nextrace.fetch.after, kept in
-- lifecycle_spans); for a Next.js service it is read from timing: the fetch of the same trace
-- that ended last before this one started, so fetches that ran in parallel are not a
-- waterfall. Next.js records a span's start to the millisecond (Date.now()) and its end as that
-- start plus a precise duration, so a fetch may seem to start up to 1 ms before the one it
-- waited for ended: ends up to 1 ms after a start count (not the fetch's own). Next.js's fetches are read once, grouped by trace (an ASOF JOIN of the spans with
-- themselves read them twice), and told by two narrow columns (the reference server's have a
-- phase), not by ScopeName, a plain string column as long as the range. Only a request span
-- names its route and (for Next.js) its build, so a route or a build is chosen by the traces
-- of its requests: a trace's fetches are all kept or all left out.
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
        later.2 AS fetch,
        arrayLast(fetch_end -> fetch_end.1 <= later.1 + toIntervalMillisecond(1)
            AND fetch_end.1 < later.1 + toIntervalNanosecond(later.3), ends).2 AS waited_for,
        later.3 AS duration_ns
    FROM (
        SELECT
            groupArray((Timestamp, SpanName, Duration)) AS fetches,
            arraySort(
                fetch_end -> fetch_end.1,
                groupArrayIf((Timestamp + toIntervalNanosecond(Duration), SpanName), Duration > 0)
            ) AS ends
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
        GROUP BY TraceId
    )
    ARRAY JOIN fetches AS later
    WHERE arrayExists(fetch_end -> fetch_end.1 <= later.1 + toIntervalMillisecond(1)
        AND fetch_end.1 < later.1 + toIntervalNanosecond(later.3), ends)
)
GROUP BY fetch, waited_for
ORDER BY times DESC, fetch
