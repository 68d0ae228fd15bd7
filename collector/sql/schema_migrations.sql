-- Bookkeeping for versioned migrations: one row per applied migration file.
CREATE TABLE IF NOT EXISTS `${database}`.`nextrace_schema_migrations` ${on_cluster} (
    Version UInt32,
    Name String,
    AppliedAt DateTime64(3) DEFAULT now64(3)
) ENGINE = ${engine}
ORDER BY Version
