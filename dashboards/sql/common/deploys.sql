-- Deploys, drawn as annotations, from the stored view `deploys` (collector/sql/schema.sql): the
-- reference server's deploy spans, and for a Next.js service the first request that each new
-- build served, which the annotation names with its service.
SELECT
    Timestamp AS time,
    if(
        Source = 'first request',
        concat('deploy ', BuildId, ' (', ServiceName, ')'),
        concat('deploy ', BuildId)
    ) AS text,
    'deploy' AS tags
FROM deploys
WHERE $__timeFilter(Timestamp)
ORDER BY time
