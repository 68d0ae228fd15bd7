-- Deploys, drawn as annotations.
SELECT
    Timestamp AS time,
    concat('deploy ', SpanAttributes['nextrace.build_id']) AS text,
    'deploy' AS tags
FROM otel_traces
WHERE SpanAttributes['nextrace.phase'] = 'deploy' AND $__timeFilter(Timestamp)
ORDER BY time
