CREATE MATERIALIZED VIEW IF NOT EXISTS `${database}`.`lifecycle_spans_mv` ${on_cluster}
TO `${database}`.`lifecycle_spans`
AS SELECT
    Timestamp,
    TraceId,
    ParentSpanId = '' AS IsRoot,
    ServiceName,
    SpanName,
    SpanAttributes['nextrace.phase'] AS Phase,
    SpanAttributes['next.route'] AS Route,
    SpanAttributes['nextrace.build_id'] AS BuildId,
    SpanAttributes['nextrace.request.kind'] AS RequestKind,
    Duration,
    mapFilter((k, v) -> startsWith(k, concat('nextrace.', Phase, '.')), SpanAttributes) AS Attributes
FROM `${database}`.`${table}`
WHERE SpanAttributes['nextrace.phase'] IN ('navigation', 'prefetch', 'middleware', 'warmup', 'revalidate', 'deploy')
   OR (SpanAttributes['nextrace.phase'] = 'fetch' AND SpanAttributes['nextrace.fetch.after'] != '')
