-- What the collector derived for the spans of the traces {trace_ids} whose producer does not
-- say it on the spans (a real Next.js app): cache outcomes (cache_events) and request kinds
-- (requests), by span.
WITH __TRACE_RANGE__
SELECT
    TraceId AS trace_id, SpanId AS span_id, Layer AS cache_layer, Result AS cache_result,
    Reason AS cache_reason, EntrySource AS cache_entry_source,
    EntrySourceTraceId AS cache_entry_trace_id,
    EntrySourceInstance AS cache_entry_instance, '' AS request_kind
FROM cache_events
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= range_start AND Timestamp <= range_end
UNION ALL
SELECT TraceId, SpanId, '', '', '', '', '', '', Kind
FROM requests
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= range_start AND Timestamp <= range_end
