-- Revalidation blast radius: entries each tag or path invalidated.
SELECT
    Attributes['nextrace.revalidate.kind'] AS kind,
    Attributes['nextrace.revalidate.target'] AS target,
    count() AS revalidations,
    sum(toUInt64OrZero(Attributes['nextrace.revalidate.invalidated'])) AS invalidated
FROM lifecycle_spans
WHERE $__timeFilter(Timestamp)
  AND Phase = 'revalidate'
  AND Attributes['nextrace.revalidate.trigger'] = 'webhook'
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(BuildId IN (${build:singlequote}), $build)
GROUP BY kind, target
ORDER BY invalidated DESC, target
LIMIT 20
