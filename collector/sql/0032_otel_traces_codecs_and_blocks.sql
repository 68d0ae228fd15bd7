-- Codecs and compression blocks chosen by measuring each on a million of the demo's spans,
-- merged (bench/storage.py), in the order 0028 sorts them: bytes per span before -> after,
-- and what it costs to insert.
--   SpanAttributes ZSTD(6) -> ZSTD(9): 8.27 -> 7.44; inserts cost the same within the noise
--     (6.4-6.6 against 6.2-7.0 µs a span). ZSTD(12) would give 6.54 for 2.5 µs more a span.
--   Events.Timestamp: 1.25 -> 0.73 with Delta; an event's times are close to each other.
--   ScopeName ZSTD(9): 0.81 -> under 0.5, its type kept (LowCardinality would give 0.13 but
--     is not the exporter's type).
--   SpanId, Duration and Timestamp ZSTD(3): 0.2, 0.13 and 0.12 less.
--   Timestamp and Duration in blocks of at least 1 MiB: 2.89 -> 1.06 and 2.51 -> 0.5. A
--     granule of either is 64 KiB, which ZSTD compresses poorly on its own; a read of one
--     trace now decompresses 1 MiB of each instead of 64 KiB. Wider columns gain little
--     (attributes 0.4, ids nothing), and their reads would pay in full.
-- Only codecs and block sizes change, never a type: new parts and merges use them, stored
-- parts are not rewritten, and the table stays the exporter's for every writer and reader.
ALTER TABLE `${database}`.`${table}` ${on_cluster}
    MODIFY COLUMN Timestamp CODEC(Delta, ZSTD(3)),
    MODIFY COLUMN SpanId CODEC(ZSTD(3)),
    MODIFY COLUMN ScopeName CODEC(ZSTD(9)),
    MODIFY COLUMN SpanAttributes CODEC(ZSTD(9)),
    MODIFY COLUMN Duration CODEC(ZSTD(3)),
    MODIFY COLUMN `Events.Timestamp` CODEC(Delta, ZSTD(1));
ALTER TABLE `${database}`.`${table}` ${on_cluster}
    MODIFY COLUMN Timestamp MODIFY SETTING min_compress_block_size = 1048576;
ALTER TABLE `${database}`.`${table}` ${on_cluster}
    MODIFY COLUMN Duration MODIFY SETTING min_compress_block_size = 1048576
