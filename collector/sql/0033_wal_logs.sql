-- The write-ahead logs that write to this store, one row per log (collector/pipeline/wal_binding.py):
-- a log that holds requests not yet stored replays only into a store that lists it.
CREATE TABLE IF NOT EXISTS `${database}`.`nextrace_wal_logs` ${on_cluster} (
    LogId String,
    Folder String,
    Host String,
    BoundAt DateTime64(3) DEFAULT now64(3)
) ENGINE = ${engine}
ORDER BY LogId
