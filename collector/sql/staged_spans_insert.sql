-- Store the spans of the staged OTLP requests in the traces table, each value written as
-- collector/pipeline/translator.py writes it (the contrib exporter's form): hex ids, an empty parent
-- for a root, pdata's kind and status names, attribute values as pdata's AsString (Go's JSON
-- number format for doubles). tests/collector/test_staging.py holds the two to the same rows.
-- Spans with map values, arrays of other than plain strings, or a key twice in one map (see
-- staged_spans_predicate.sql), are taken instead from the rows
-- Python made for them (${staging}_rows, see staged_spans_unsupported.sql): one insert, one
-- block, one deduplication token for the whole batch.
INSERT INTO `${database}`.`${table}` (
    Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode,
    StatusMessage, `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`,
    `Links.SpanId`, `Links.TraceState`, `Links.Attributes`)
WITH
    ${unsupported},
    (d -> multiIf(
        isNaN(d), 'json: unsupported value: NaN',
        isInfinite(d), if(d > 0, 'json: unsupported value: +Inf', 'json: unsupported value: -Inf'),
        -- Go writes exponents with a sign and no leading zeros: 1e+21, 1e-7.
        d != 0 AND (abs(d) < 1e-6 OR abs(d) >= 1e21),
            replaceRegexpOne(replaceRegexpOne(toString(d), 'e(\\d)', 'e+\\1'), 'e([+-])0+(\\d)', 'e\\1\\2'),
        toString(d))) AS go_number,
    (v -> multiIf(
        v.value = 'string_value', v.string_value,
        v.value = 'int_value', toString(v.int_value),
        v.value = 'bool_value', if(v.bool_value, 'true', 'false'),
        v.value = 'double_value', go_number(v.double_value),
        v.value = 'bytes_value', base64Encode(v.bytes_value),
        -- Plain strings only (the predicate): their JSON needs no escapes.
        v.value = 'array_value',
            concat('[', arrayStringConcat(arrayMap(item -> concat('"', item.string_value, '"'),
                                                   v.array_value.values), ','), ']'),
        '')) AS as_string,
    (kvs -> mapFromArrays(arrayMap(kv -> kv.key, kvs), arrayMap(kv -> as_string(kv.value), kvs))) AS to_map,
    (id -> if(replaceAll(id, '\0', '') = '', '', lower(hex(id)))) AS hex_id
SELECT
    fromUnixTimestamp64Nano(toInt64(span.start_time_unix_nano)),
    lower(hex(span.trace_id)),
    lower(hex(span.span_id)),
    hex_id(span.parent_span_id),
    span.trace_state,
    span.name,
    if(span.kind BETWEEN 0 AND 5,
       ['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer'][span.kind + 1], ''),
    -- A resource's keys are unique here (staged_spans_predicate.sql): its map has them all.
    resource_attributes['service.name'],
    to_map(rs.resource.attributes) AS resource_attributes,
    ss.scope.name,
    ss.scope.version,
    to_map(span.attributes),
    if(span.end_time_unix_nano > span.start_time_unix_nano,
       span.end_time_unix_nano - span.start_time_unix_nano, 0),
    if(span.status.code BETWEEN 0 AND 2, ['Unset', 'Ok', 'Error'][span.status.code + 1], ''),
    span.status.message,
    arrayMap(e -> fromUnixTimestamp64Nano(toInt64(e.time_unix_nano)), span.events),
    arrayMap(e -> e.name, span.events),
    arrayMap(e -> to_map(e.attributes), span.events),
    arrayMap(l -> hex_id(l.trace_id), span.links),
    arrayMap(l -> hex_id(l.span_id), span.links),
    arrayMap(l -> l.trace_state, span.links),
    arrayMap(l -> to_map(l.attributes), span.links)
FROM `${database}`.`${staging}`
ARRAY JOIN resource_spans AS rs
ARRAY JOIN rs.scope_spans AS ss
ARRAY JOIN ss.spans AS span
WHERE NOT unsupported_span(rs, span)
UNION ALL
-- The rows table has the columns above, in their order (staging_table.sql).
SELECT * FROM `${database}`.`${staging}_rows`
