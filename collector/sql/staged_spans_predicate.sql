-- Whether a staged span needs the rows Python makes: a map value, an array value other than
-- plain strings, or a key twice in one map, in the span, its events, its links or its
-- resource. Placed in the WITH clause of staged_spans_unsupported.sql and
-- staged_spans_insert.sql, so that the two agree.
-- Plain strings are printable ASCII but the characters Go's JSON escapes (quote, backslash, and
-- the HTML ones), so that the array's JSON is its items quoted: tags, as Next.js writes them.
(a -> arrayAll(item -> item.value = 'string_value'
                       AND NOT match(item.string_value, '[^ -~]|["&<>\\\\]'),
               a.values)) AS plain_strings,
(kvs -> arrayExists(kv -> kv.value.value = 'kvlist_value'
                          OR (kv.value.value = 'array_value'
                              AND NOT plain_strings(kv.value.array_value)),
                    kvs)
        OR arrayUniq(arrayMap(kv -> kv.key, kvs)) != length(kvs)) AS unsupported,
((rs, span) -> unsupported(rs.resource.attributes)
    OR unsupported(span.attributes)
    OR arrayExists(e -> unsupported(e.attributes), span.events)
    OR arrayExists(l -> unsupported(l.attributes), span.links)) AS unsupported_span
