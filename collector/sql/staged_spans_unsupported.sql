-- The positions (from 0, in the order translate() reads them) of the staged spans that hold a
-- value only collector/pipeline/translator.py writes exactly: a map value or a list of other
-- than plain strings (pdata writes them as Go's JSON, which SQL does not reproduce in every
-- case) or a key twice in one map (translate keeps the last), in the span, its events, its
-- links or its resource. Those spans are stored from the
-- rows Python made for them; the staged insert takes the others (staged_spans_insert.sql).
-- Read without ARRAY JOIN: a quarter of the time. The placeholder below defines `unsupported`
-- and `unsupported_span` (staged_spans_predicate.sql).
WITH
    ${unsupported}
SELECT arrayFilter((position, flag) -> flag, range(length(flags)), flags)
FROM (
    SELECT arrayFlatten(arrayMap(
        rs -> arrayMap(ss -> arrayMap(span -> unsupported_span(rs, span), ss.spans), rs.scope_spans),
        resource_spans)) AS flags
    FROM `${database}`.`${staging}`
)
