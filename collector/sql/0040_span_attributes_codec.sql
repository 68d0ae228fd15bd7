-- SpanAttributes back to ZSTD(6), from 0032's ZSTD(9): chosen by a same-run A/B of the whole
-- collector's CPU against bytes (bench/codec.py, bench/results/codec.json). A steady 10,000
-- spans/s of the reference server's synthetic spans, the collector's defaults, each level in
-- turn in each of 3 runs, each run in the other order. CPU per span with the merges that
-- recompress the column as parts grow (median, runs), its ratio to ZSTD(9)'s in the same run
-- (median, runs), then the column's bytes per span once merged:
--   ZSTD(1) 50.7 µs (42.5-58.5), 0.896 (0.756-1.045), 23.08 B,
--   ZSTD(3) 49.4 µs (44.0-61.2), 0.873 (0.783-1.093), 20.25 B,
--   ZSTD(6) 52.9 µs (49.3-55.9), 0.935 (0.877-0.998), 18.99 B,
--   ZSTD(9) 56.2 µs (56.0-56.6), 1, 17.43 B.
-- An earlier run of the same, the levels always in the order 1, 3, 6, 9, gave ZSTD(6) 0.899.
-- 0032 measured "the same within the noise" on inserts alone, merges stopped. At a steady rate
-- each part is recompressed as merges grow it, and ZSTD(9) costs 6 to 10% of the collector's
-- CPU. ZSTD(6) is below it in every run and keeps most of the bytes: on the demo's spans,
-- merged, otel_traces costs 26.2 B a span against 25.4, the whole store 43.9 against 42.7
-- (bench/storage.py, 1M spans), within the 5% the store may grow. ZSTD(1) and ZSTD(3) cost
-- less CPU in the median but not in every run, for 1.3 to 4.1 B a span more.
-- New parts and merges use it, and stored parts are not rewritten.
ALTER TABLE `${database}`.`${table}` ${on_cluster}
    MODIFY COLUMN SpanAttributes CODEC(ZSTD(6))
