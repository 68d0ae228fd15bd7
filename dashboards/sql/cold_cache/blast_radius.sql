-- Revalidation blast radius: entries each tag or path invalidated.
SELECT
    SpanAttributes['nextrace.revalidate.kind'] AS kind,
    SpanAttributes['nextrace.revalidate.target'] AS target,
    count() AS revalidations,
    sum(toUInt64OrZero(SpanAttributes['nextrace.revalidate.invalidated'])) AS invalidated
FROM otel_traces
WHERE $__timeFilter(Timestamp)
  AND SpanAttributes['nextrace.phase'] = 'revalidate'
  AND SpanAttributes['nextrace.revalidate.trigger'] = 'webhook'
  AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
  AND $__conditionalAll(SpanAttributes['nextrace.build_id'] IN (${build:singlequote}), $build)
GROUP BY kind, target
ORDER BY invalidated DESC, target
LIMIT 20
