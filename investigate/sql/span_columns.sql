-- The columns of a span as investigate.spans.span_of reads them: included by the queries that
-- read whole traces.
TraceId AS trace_id,
SpanId AS span_id,
ParentSpanId AS parent_id,
ServiceName AS service,
SpanName AS name,
SpanKind AS kind,
toUnixTimestamp64Nano(Timestamp) AS start_ns,
Duration AS duration_ns,
StatusCode AS status,
SpanAttributes AS attributes,
`Links.TraceId` AS linked_trace_ids
