SELECT DISTINCT SpanAttributes['nextrace.build_id'] AS build FROM otel_traces
WHERE SpanAttributes['nextrace.phase'] = 'request' AND build != '' AND $__timeFilter(Timestamp)
ORDER BY build
