-- SpanAttributes back to ZSTD(6), from 0032's ZSTD(9): chosen by a same-run A/B of the whole
-- collector's CPU against bytes (bench/codec.py, bench/results/codec.json). A steady 10,000
-- spans/s of the reference server's synthetic spans, the collector's defaults, each level in
-- turn in each of 3 runs. CPU per span with the merges that recompress the column as parts
-- grow, then the column's bytes per span once merged:
--   ZSTD(1) 49.9 µs (48.9-57.8), 0.877 of ZSTD(9)'s in the same runs, 23.08 B,
--   ZSTD(3) 53.3 µs (51.5-54.2), 0.842, 20.24 B,
--   ZSTD(6) 53.5 µs (51.6-57.9), 0.899, 18.99 B,
--   ZSTD(9) 63.2 µs (56.9-64.4), 1, 17.44 B.
-- 0032 measured "the same within the noise" on inserts alone, merges stopped. At a steady rate
-- each part is recompressed as merges grow it, and ZSTD(9) costs a tenth of the collector's
-- CPU. ZSTD(6) keeps most of the bytes: on the demo's spans, merged, otel_traces costs
-- 26.2 B a span against 25.4, the whole store 43.9 against 42.7 (bench/storage.py, 1M spans):
-- within the 5% the store may grow.
-- New parts and merges use it, and stored parts are not rewritten.
ALTER TABLE `${database}`.`${table}` ${on_cluster}
    MODIFY COLUMN SpanAttributes CODEC(ZSTD(6))
