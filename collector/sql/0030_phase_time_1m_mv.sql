CREATE MATERIALIZED VIEW IF NOT EXISTS `${database}`.`phase_time_1m_mv` ${on_cluster}
TO `${database}`.`phase_time_1m`
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    multiIf(
        SpanAttributes['nextrace.phase'] != '', SpanAttributes['nextrace.phase'],
        ScopeName != 'next.js', '',
        SpanAttributes['next.span_type'] = 'Middleware.execute', 'middleware',
        SpanAttributes['next.span_type'] = 'NextNodeServer.findPageComponents', 'route',
        SpanAttributes['next.span_type'] = 'AppRender.getBodyResult', 'render',
        SpanAttributes['next.span_type'] = 'AppRender.fetch', 'fetch',
        ''
    ) AS Phase,
    count() AS Spans,
    sum(Duration) AS DurationNs
FROM `${database}`.`${table}`
WHERE Phase != ''
GROUP BY Minute, ServiceName, Phase
