CREATE MATERIALIZED VIEW IF NOT EXISTS `${database}`.`phase_time_1m_mv` ${on_cluster}
TO `${database}`.`phase_time_1m`
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    multiIf(
        SpanAttributes['nextrace.phase'] != '', SpanAttributes['nextrace.phase'],
        ScopeName != 'next.js', '',
        ${next_phase_branches}
        ''
    ) AS Phase,
    count() AS Spans,
    sum(Duration) AS DurationNs
FROM `${database}`.`${table}`
WHERE Phase != ''
GROUP BY Minute, ServiceName, Phase
