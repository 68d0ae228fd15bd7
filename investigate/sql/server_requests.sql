-- The server's requests per kind, from `requests` (every source alike), with their time, and
-- the middleware runs that served them: a real Next.js app's from its requests rows
-- (MiddlewareMs), the reference server's from its middleware spans, which carry the request
-- kind (as the Prefetch dashboard's load panel counts them). Counts sum Sign, so that a row
-- being corrected (collector/sql/0018_row_corrections.sql) counts once. Redirects (3xx) are
-- counted apart as well: Next.js 16 answers an RSC request without its `_rsc` query with one.
SELECT
    kind,
    sum(requests) AS requests,
    sum(redirects) AS redirects,
    sum(request_ns) AS request_ns,
    sum(middleware_runs) AS middleware_runs,
    sum(middleware_ns) AS middleware_ns
FROM (
    SELECT
        Kind AS kind,
        sum(Sign) AS requests,
        sumIf(Sign, StatusCode BETWEEN 300 AND 399) AS redirects,
        sum(ifNull(toInt64(Duration), 0) * Sign) AS request_ns,  -- a CDN's row may have none
        sumIf(Sign, MiddlewareMs IS NOT NULL) AS middleware_runs,
        toInt64(sum(ifNull(MiddlewareMs, 0) * Sign) * 1e6) AS middleware_ns
    FROM requests
    WHERE __WINDOW__
    GROUP BY kind
    UNION ALL
    SELECT
        RequestKind AS kind,
        toInt64(0) AS requests,
        toInt64(0) AS redirects,
        toInt64(0) AS request_ns,
        toInt64(count()) AS middleware_runs,
        toInt64(sum(Duration)) AS middleware_ns
    FROM lifecycle_spans
    WHERE Phase = 'middleware' AND __WINDOW__
    GROUP BY kind
)
GROUP BY kind
HAVING requests != 0 OR middleware_runs != 0
ORDER BY requests DESC, kind
