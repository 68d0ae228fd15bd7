-- Next.js services that fetch (@vercel/otel's fetch span) without Next.js's own fetch span
-- (AppRender.fetch), the only one that says whether the data cache hit: @vercel/otel turns it
-- off by default, and their data cache is then invisible. A service that traces its
-- incremental cache handler (@nextrace/next/cache-handler), which holds the data cache, sees
-- it there, and is not listed. Empty when every service is seen.
SELECT
    ServiceName AS service,
    countIf(ScopeName = '@vercel/otel/fetch') AS fetches,
    countIf(NextSpanType = 'AppRender.fetch') AS nextjs_fetch_spans
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND ScopeName IN ('next.js', '@vercel/otel/fetch', '@nextrace/next')
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
GROUP BY service
HAVING fetches > 0 AND nextjs_fetch_spans = 0
   AND countIf(ScopeName = '@nextrace/next' AND SpanAttributes['nextrace.cache.kind'] = 'incremental') = 0
ORDER BY service
