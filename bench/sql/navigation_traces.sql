-- Navigation traces of 20 spans each, as the reference server and its browsers write them:
-- the browser's navigation, the server's request with middleware, render, stream and a CDN
-- lookup, five fetches with their data-cache lookups, four request-memo lookups. Traces
-- {first} to {first} + {count} - 1, one every {spacing_ns} from {start_ns}; their routes,
-- durations and cache results vary with the trace number.
INSERT INTO otel_traces (
    Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, SpanAttributes, Duration, StatusCode
)
WITH
    number AS n,
    ['/products/[id]', '/products', '/', '/dashboard', '/feed', '/blog/[slug]', '/docs', '/about'][
        1 + n % 8] AS route,
    lower(hex(cityHash64(n, 'trace'))) || lower(hex(cityHash64(n, 'trace', 2))) AS trace_id,
    (i -> lower(hex(cityHash64(n, i)))) AS span_id,
    toInt64({start_ns:Int64} + n * {spacing_ns:UInt64}) AS nav_start,
    20000000 + cityHash64(n, 'ms') % 600000000 AS fetch_ns,
    multiIf(idx = 0, 0, idx < 5, 2000000, idx < 10, 3000000 + (idx - 5) * 100000,
            idx < 15, 3000000 + (idx - 10) * 100000 + 10000, 2500000) AS offset_ns
SELECT
    fromUnixTimestamp64Nano(nav_start + offset_ns) AS Timestamp,
    trace_id AS TraceId,
    span_id(idx) AS SpanId,
    multiIf(idx = 0, '', idx = 1, span_id(0), idx IN (2, 3, 4, 15), span_id(1),
            idx < 10, span_id(3), idx < 15, span_id(idx - 5), span_id(3)) AS ParentSpanId,
    multiIf(idx = 0, concat('navigation ', route), idx = 1, concat('RSC GET ', route),
            idx = 2, 'middleware', idx = 3, concat('render route (app) ', route),
            idx = 4, 'stream', idx < 10, concat('fetch GET api/', toString(idx)),
            idx < 15, 'data cache lookup', idx = 15, 'cdn cache lookup',
            'request_memo cache lookup') AS SpanName,
    if(idx = 0, 'Client', 'Internal') AS SpanKind,
    if(idx = 0, 'browser', 'shop') AS ServiceName,
    map('service.name', if(idx = 0, 'browser', 'shop')) AS ResourceAttributes,
    'bench' AS ScopeName,
    multiIf(
        idx = 0, map('nextrace.phase', 'navigation', 'next.route', route,
                     'nextrace.navigation.type', if(n % 5 = 0, 'document', 'soft')),
        idx = 1, map('nextrace.phase', 'request', 'nextrace.request.kind', 'rsc_navigation',
                     'next.route', route, 'nextrace.build_id', concat('build-', toString(intDiv(n, 50000)))),
        idx = 2, map('nextrace.phase', 'middleware'),
        idx = 3, map('nextrace.phase', 'render'),
        idx = 4, map('nextrace.phase', 'stream'),
        idx < 10, map('nextrace.phase', 'fetch'),
        idx < 15, map('nextrace.phase', 'cache', 'cache.layer', 'data',
                      'cache.result', if(cityHash64(n, idx) % 10 = 0, 'miss', 'hit'),
                      'cache.miss_reason', if(cityHash64(n, idx) % 10 = 0, 'expired', ''),
                      'cache.key', concat('api/', toString(idx), '/', toString(n % 1000))),
        idx = 15, map('nextrace.phase', 'cdn', 'cache.layer', 'cdn', 'cache.result', 'miss',
                      'cache.miss_reason', 'dynamic'),
        map('nextrace.phase', 'cache', 'cache.layer', 'request_memo', 'cache.result', 'miss',
            'cache.miss_reason', 'cold')
    ) AS SpanAttributes,
    multiIf(idx = 0, fetch_ns + 8000000, idx = 1, fetch_ns + 5000000, idx = 2, 1000000,
            idx = 3, fetch_ns + 1000000, idx = 4, fetch_ns + 1500000,
            idx = 5, fetch_ns, idx < 10, intDiv(fetch_ns, 4), idx < 16, 20000, 10000) AS Duration,
    'Unset' AS StatusCode
FROM numbers({first:UInt64}, {count:UInt64}) AS trace_numbers
ARRAY JOIN range(20) AS idx
SETTINGS max_insert_threads = 2
