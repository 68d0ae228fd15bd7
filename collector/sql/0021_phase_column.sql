-- The lifecycle phase of each span (nextrace.phase, docs/semantic-conventions.md) and Next.js's
-- own span type (next.span_type) as columns of their own, so that panels, alerts and the
-- report filter and group spans by them without reading the whole SpanAttributes map of every
-- span in the range. MATERIALIZED: computed at insert and invisible to SELECT * and to
-- inserts, so the table stays column-compatible with the contrib exporter's, and a writer that
-- does not know the columns still fills them. Parts stored before this migration compute them
-- when read until the mutation has rewritten them.
ALTER TABLE `${database}`.`${table}` ${on_cluster}
    ADD COLUMN IF NOT EXISTS Phase LowCardinality(String)
    MATERIALIZED SpanAttributes['nextrace.phase'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS NextSpanType LowCardinality(String)
    MATERIALIZED SpanAttributes['next.span_type'] CODEC(ZSTD(1));
ALTER TABLE `${database}`.`${table}` ${on_cluster} MATERIALIZE COLUMN Phase;
ALTER TABLE `${database}`.`${table}` ${on_cluster} MATERIALIZE COLUMN NextSpanType
