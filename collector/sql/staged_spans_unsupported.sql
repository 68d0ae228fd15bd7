-- Whether the staged batch holds (1) or not (0) a value that only collector/pipeline/translator.py
-- writes exactly: an array or map value (pdata writes it as Go's JSON, which SQL does not
-- reproduce in every case) or a key twice in one map (translate keeps the last). If it does,
-- the exporter stores the batch by columns. Read without ARRAY JOIN: a quarter of the time.
WITH
    (kvs -> arrayExists(kv -> kv.value.value IN ('array_value', 'kvlist_value'), kvs)
            OR arrayUniq(arrayMap(kv -> kv.key, kvs)) != length(kvs)) AS unsupported
SELECT countIf(arrayExists(
    rs -> unsupported(rs.resource.attributes) OR arrayExists(
        ss -> arrayExists(
            span -> unsupported(span.attributes)
                OR arrayExists(e -> unsupported(e.attributes), span.events)
                OR arrayExists(l -> unsupported(l.attributes), span.links),
            ss.spans),
        rs.scope_spans),
    resource_spans))
FROM `${database}`.`${staging}`
