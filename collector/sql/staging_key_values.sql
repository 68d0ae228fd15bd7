-- The type of OTLP's repeated KeyValue as the staging table reads it: staging.py puts it at the
-- four places of staging_table.sql that say ${key_values} (ClickHouse has no type aliases).
-- `value` says which member of the oneof is set (input_format_protobuf_oneof_presence). Of an
-- array value, only its items' strings and kinds are read (staged_spans_predicate.sql).
Array(Tuple(key String, value Tuple(
    string_value String, bool_value Bool, int_value Int64, double_value Float64,
    array_value Tuple(values Array(Tuple(string_value String,
        value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                    'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6,
                    'bytes_value' = 7)))),
    kvlist_value String, bytes_value String,
    value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7))))
