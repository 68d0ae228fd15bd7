-- One exporter's staging table: a batch of OTLP export requests as ClickHouse's ProtobufSingle
-- format reads them with collector/sql/otlp_trace.proto, one row nested as the message is.
-- Memory: a batch lives here only between its staged insert and the INSERT … SELECT
-- that stores it (collector/storage/staging.py). The key-value type, at four places, is
-- staging_key_values.sql, put there by staging.py.
CREATE TABLE IF NOT EXISTS `${database}`.`${staging}` (
    resource_spans Array(Tuple(
        resource Tuple(attributes ${key_values}),
        scope_spans Array(Tuple(
            scope Tuple(name String, version String),
            spans Array(Tuple(
                trace_id String, span_id String, trace_state String, parent_span_id String,
                name String, kind Int32, start_time_unix_nano UInt64, end_time_unix_nano UInt64,
                attributes ${key_values},
                events Array(Tuple(time_unix_nano UInt64, name String, attributes ${key_values})),
                links Array(Tuple(trace_id String, span_id String, trace_state String,
                    attributes ${key_values})),
                status Tuple(message String, code Int32)))))))
) ENGINE = Memory;
-- Beside it, the rows Python made for the spans the staged insert cannot write exactly
-- (staged_spans_unsupported.sql), in the traces table's columns.
CREATE TABLE IF NOT EXISTS `${database}`.`${staging}_rows` ENGINE = Memory AS
SELECT
    Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode,
    StatusMessage, `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`,
    `Links.SpanId`, `Links.TraceState`, `Links.Attributes`
FROM `${database}`.`${table}`
LIMIT 0
