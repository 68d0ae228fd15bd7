-- Whether a staged span needs the rows Python makes: an array or map value, or a key twice in
-- one map, in the span, its events, its links or its resource. Placed in the WITH clause of
-- staged_spans_unsupported.sql and staged_spans_insert.sql, so that the two agree.
(kvs -> arrayExists(kv -> kv.value.value IN ('array_value', 'kvlist_value'), kvs)
        OR arrayUniq(arrayMap(kv -> kv.key, kvs)) != length(kvs)) AS unsupported,
((rs, span) -> unsupported(rs.resource.attributes)
    OR unsupported(span.attributes)
    OR arrayExists(e -> unsupported(e.attributes), span.events)
    OR arrayExists(l -> unsupported(l.attributes), span.links)) AS unsupported_span
