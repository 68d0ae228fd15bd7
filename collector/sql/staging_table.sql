-- One exporter's staging table: a batch of OTLP export requests as ClickHouse's ProtobufSingle
-- format reads them with collector/sql/otlp_trace.proto, one row nested as the message is.
-- Memory: a batch lives here only between its staged insert and the INSERT … SELECT
-- that stores it (collector/storage/staging.py). The key-value type is written out at each of its
-- four places: ClickHouse has no type aliases. An array value keeps its items' strings and which
-- kind each item is; other values in an array are not read (staged_spans_predicate.sql).
CREATE TABLE IF NOT EXISTS `${database}`.`${staging}` (
    resource_spans Array(Tuple(
        resource Tuple(attributes Array(Tuple(key String, value Tuple(
            string_value String, bool_value Bool, int_value Int64, double_value Float64,
            array_value Tuple(values Array(Tuple(string_value String,
                value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                            'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6,
                            'bytes_value' = 7)))),
            kvlist_value String, bytes_value String,
            value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                        'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6,
                        'bytes_value' = 7))))),
        scope_spans Array(Tuple(
            scope Tuple(name String, version String),
            spans Array(Tuple(
                trace_id String, span_id String, trace_state String, parent_span_id String,
                name String, kind Int32, start_time_unix_nano UInt64, end_time_unix_nano UInt64,
                attributes Array(Tuple(key String, value Tuple(
                    string_value String, bool_value Bool, int_value Int64, double_value Float64,
                    array_value Tuple(values Array(Tuple(string_value String,
                        value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                                    'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6,
                                    'bytes_value' = 7)))),
                    kvlist_value String, bytes_value String,
                    value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                                'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6,
                                'bytes_value' = 7)))),
                events Array(Tuple(time_unix_nano UInt64, name String,
                    attributes Array(Tuple(key String, value Tuple(
                        string_value String, bool_value Bool, int_value Int64, double_value Float64,
                        array_value Tuple(values Array(Tuple(string_value String,
                            value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                                        'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6,
                                        'bytes_value' = 7)))),
                        kvlist_value String, bytes_value String,
                        value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                                    'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6,
                                    'bytes_value' = 7)))))),
                links Array(Tuple(trace_id String, span_id String, trace_state String,
                    attributes Array(Tuple(key String, value Tuple(
                        string_value String, bool_value Bool, int_value Int64, double_value Float64,
                        array_value Tuple(values Array(Tuple(string_value String,
                            value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                                        'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6,
                                        'bytes_value' = 7)))),
                        kvlist_value String, bytes_value String,
                        value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                                    'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6,
                                    'bytes_value' = 7)))))),
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
