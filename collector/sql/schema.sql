-- Every table and view of a nextrace store, as it is now. A new store is made from this file;
-- a store made by an earlier release (or by the OpenTelemetry Collector's exporter) is brought
-- here by the migrations, NNNN_*.sql, which say why each thing is as it is.
-- tests/collector/test_schema.py holds both ways to the same SHOW CREATE of every object;
-- `python -m tests.support.schema_dump` writes this file again after a migration is added.
CREATE TABLE `${database}`.`builds`
(
    `ServiceName` LowCardinality(String),
    `BuildId` LowCardinality(String),
    `Source` LowCardinality(String),
    `FirstSeen` SimpleAggregateFunction(min, DateTime64(9))
)
ENGINE = ${summing_engine}
ORDER BY (ServiceName, BuildId, Source)
SETTINGS index_granularity = 8192, old_parts_lifetime = 480;
CREATE TABLE `${database}`.`cache_events`
(
    `Timestamp` DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    `TraceId` String CODEC(ZSTD(1)),
    `SpanId` String CODEC(ZSTD(1)),
    `ServiceName` LowCardinality(String) CODEC(ZSTD(1)),
    `Route` LowCardinality(String) CODEC(ZSTD(1)),
    `Layer` LowCardinality(String) CODEC(ZSTD(1)),
    `Result` LowCardinality(String) CODEC(ZSTD(1)),
    `Reason` LowCardinality(String) CODEC(ZSTD(1)),
    `Key` String CODEC(ZSTD(1)),
    `Tags` Array(String) CODEC(ZSTD(1)),
    `Scope` LowCardinality(String) CODEC(ZSTD(1)),
    `EntryAgeMs` Float64 CODEC(ZSTD(1)),
    `EntrySource` LowCardinality(String) CODEC(ZSTD(1)),
    `EntrySourceTraceId` String CODEC(ZSTD(1)),
    `WarmupPending` Bool,
    `BuildId` LowCardinality(String) CODEC(ZSTD(1)),
    `Sign` Int8 DEFAULT 1,
    `Region` LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)),
    `Instance` LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)),
    `EntrySourceInstance` LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)),
    `Function` LowCardinality(String) DEFAULT '' CODEC(ZSTD(1))
)
ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Layer, ServiceName, toStartOfMinute(Timestamp), Timestamp)
${ttl_timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000, old_parts_lifetime = 480;
CREATE TABLE `${database}`.`cache_events_1m`
(
    `Minute` DateTime CODEC(Delta(4), ZSTD(1)),
    `ServiceName` LowCardinality(String) CODEC(ZSTD(1)),
    `Layer` LowCardinality(String) CODEC(ZSTD(1)),
    `Route` LowCardinality(String) CODEC(ZSTD(1)),
    `BuildId` LowCardinality(String) CODEC(ZSTD(1)),
    `Result` LowCardinality(String) CODEC(ZSTD(1)),
    `Reason` LowCardinality(String) CODEC(ZSTD(1)),
    `Lookups` Int64
)
ENGINE = ${summing_engine}
PARTITION BY toDate(Minute)
ORDER BY (Layer, ServiceName, Minute, Route, BuildId, Result, Reason)
${ttl_minute}
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000, old_parts_lifetime = 480;
CREATE TABLE `${database}`.`lifecycle_spans`
(
    `Timestamp` DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    `TraceId` String CODEC(ZSTD(1)),
    `IsRoot` Bool,
    `ServiceName` LowCardinality(String) CODEC(ZSTD(1)),
    `SpanName` LowCardinality(String) CODEC(ZSTD(1)),
    `Phase` LowCardinality(String) CODEC(ZSTD(1)),
    `Route` LowCardinality(String) CODEC(ZSTD(1)),
    `BuildId` LowCardinality(String) CODEC(ZSTD(1)),
    `RequestKind` LowCardinality(String) CODEC(ZSTD(1)),
    `Duration` UInt64 CODEC(ZSTD(1)),
    `Attributes` Map(LowCardinality(String), String) CODEC(ZSTD(1))
)
ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Phase, ServiceName, toStartOfMinute(Timestamp), Timestamp)
${ttl_timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000, old_parts_lifetime = 480;
CREATE TABLE `${database}`.`nextrace_collector_stats`
(
    `Timestamp` DateTime64(3) CODEC(Delta(8), ZSTD(1)),
    `Instance` LowCardinality(String),
    `SpansReceived` UInt64,
    `SpansAccepted` UInt64,
    `SpansExported` UInt64,
    `QueueSpans` UInt64,
    `SpansDropped` Map(LowCardinality(String), UInt64),
    `RequestsRejected` Map(LowCardinality(String), UInt64),
    `ExportSeconds` Float64,
    `Exports` UInt64
)
ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Instance, Timestamp)
${ttl_timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, old_parts_lifetime = 480;
CREATE TABLE `${database}`.`nextrace_wal_logs`
(
    `LogId` String,
    `Folder` String,
    `Host` String,
    `BoundAt` DateTime64(3) DEFAULT now64(3)
)
ENGINE = ${engine}
ORDER BY LogId
SETTINGS index_granularity = 8192, old_parts_lifetime = 480;
CREATE TABLE `${database}`.`${table}`
(
    `Timestamp` DateTime64(9) CODEC(Delta(8), ZSTD(3)) SETTINGS (min_compress_block_size = 1048576),
    `TraceId` String CODEC(ZSTD(1)),
    `SpanId` String CODEC(ZSTD(3)),
    `ParentSpanId` String CODEC(ZSTD(1)),
    `TraceState` String CODEC(ZSTD(1)),
    `SpanName` LowCardinality(String) CODEC(ZSTD(1)),
    `SpanKind` LowCardinality(String) CODEC(ZSTD(1)),
    `ServiceName` LowCardinality(String) CODEC(ZSTD(1)),
    `ResourceAttributes` Map(LowCardinality(String), String) CODEC(ZSTD(6)),
    `ScopeName` String CODEC(ZSTD(9)),
    `ScopeVersion` String CODEC(ZSTD(1)),
    `SpanAttributes` Map(LowCardinality(String), String) CODEC(ZSTD(6)),
    `Duration` UInt64 CODEC(ZSTD(3)) SETTINGS (min_compress_block_size = 1048576),
    `StatusCode` LowCardinality(String) CODEC(ZSTD(1)),
    `StatusMessage` String CODEC(ZSTD(1)),
    `Events.Timestamp` Array(DateTime64(9)) CODEC(Delta(8), ZSTD(1)),
    `Events.Name` Array(LowCardinality(String)) CODEC(ZSTD(1)),
    `Events.Attributes` Array(Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
    `Links.TraceId` Array(String) CODEC(ZSTD(1)),
    `Links.SpanId` Array(String) CODEC(ZSTD(1)),
    `Links.TraceState` Array(String) CODEC(ZSTD(1)),
    `Links.Attributes` Array(Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
    `Phase` LowCardinality(String) MATERIALIZED SpanAttributes['nextrace.phase'] CODEC(ZSTD(1)),
    `NextSpanType` LowCardinality(String) MATERIALIZED SpanAttributes['next.span_type'] CODEC(ZSTD(1)),
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
)
ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFifteenMinutes(Timestamp), TraceId, Timestamp)
${ttl_timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000, old_parts_lifetime = 480;
CREATE TABLE `${database}`.`${table}_trace_id_ts`
(
    `TraceId` String CODEC(ZSTD(1)),
    `Start` DateTime CODEC(Delta(4), ZSTD(1)),
    `End` DateTime CODEC(Delta(4), ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ${engine}
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
${ttl_start}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000, old_parts_lifetime = 480;
CREATE TABLE `${database}`.`phase_time_1m`
(
    `Minute` DateTime CODEC(Delta(4), ZSTD(1)),
    `ServiceName` LowCardinality(String) CODEC(ZSTD(1)),
    `Phase` LowCardinality(String) CODEC(ZSTD(1)),
    `Spans` UInt64,
    `DurationNs` UInt64
)
ENGINE = ${summing_engine}
PARTITION BY toDate(Minute)
ORDER BY (Phase, ServiceName, Minute)
${ttl_minute}
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 8192, old_parts_lifetime = 480;
CREATE TABLE `${database}`.`requests`
(
    `Timestamp` DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    `TraceId` String CODEC(ZSTD(1)),
    `SpanId` String CODEC(ZSTD(1)),
    `ServiceName` LowCardinality(String) CODEC(ZSTD(1)),
    `Route` LowCardinality(String) CODEC(ZSTD(1)),
    `Kind` LowCardinality(String) CODEC(ZSTD(1)),
    `KindSource` LowCardinality(String) CODEC(ZSTD(1)),
    `Prefetch` LowCardinality(String) CODEC(ZSTD(1)),
    `Method` LowCardinality(String) CODEC(ZSTD(1)),
    `Path` String CODEC(ZSTD(1)),
    `StatusCode` UInt16,
    `Duration` Nullable(UInt64) CODEC(ZSTD(1)),
    `TtfbMs` Nullable(Float64) CODEC(ZSTD(1)),
    `RenderMs` Nullable(Float64) CODEC(ZSTD(1)),
    `MiddlewareMs` Nullable(Float64) CODEC(ZSTD(1)),
    `BuildId` LowCardinality(String) CODEC(ZSTD(1)),
    `Source` LowCardinality(String) CODEC(ZSTD(1)),
    `Sign` Int8 DEFAULT 1,
    `ResponseBytes` Nullable(UInt64) CODEC(ZSTD(1)),
    `Region` LowCardinality(String) DEFAULT '' CODEC(ZSTD(1))
)
ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Kind, toStartOfMinute(Timestamp), Timestamp)
${ttl_timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000, old_parts_lifetime = 480;
CREATE TABLE `${database}`.`requests_1m`
(
    `Minute` DateTime CODEC(Delta(4), ZSTD(1)),
    `ServiceName` LowCardinality(String) CODEC(ZSTD(1)),
    `Route` LowCardinality(String) CODEC(ZSTD(1)),
    `BuildId` LowCardinality(String) CODEC(ZSTD(1)),
    `Kind` LowCardinality(String) CODEC(ZSTD(1)),
    `Requests` Int64
)
ENGINE = ${summing_engine}
PARTITION BY toDate(Minute)
ORDER BY (ServiceName, Minute, Kind, Route, BuildId)
${ttl_minute}
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000, old_parts_lifetime = 480;
CREATE MATERIALIZED VIEW `${database}`.`builds_mv` TO `${database}`.`builds`
(
    `ServiceName` LowCardinality(String),
    `BuildId` LowCardinality(String),
    `Source` LowCardinality(String),
    `FirstSeen` DateTime64(9)
)
AS SELECT
    ServiceName,
    BuildId,
    Source,
    min(Timestamp) AS FirstSeen
FROM `${database}`.`requests`
WHERE BuildId != ''
GROUP BY
    ServiceName,
    BuildId,
    Source;
CREATE MATERIALIZED VIEW `${database}`.`cache_events_1m_mv` TO `${database}`.`cache_events_1m`
(
    `Minute` DateTime,
    `ServiceName` LowCardinality(String),
    `Layer` LowCardinality(String),
    `Route` LowCardinality(String),
    `BuildId` LowCardinality(String),
    `Result` LowCardinality(String),
    `Reason` LowCardinality(String),
    `Lookups` Int64
)
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    Layer,
    Route,
    BuildId,
    Result,
    Reason,
    sum(Sign) AS Lookups
FROM `${database}`.`cache_events`
GROUP BY
    Minute,
    ServiceName,
    Layer,
    Route,
    BuildId,
    Result,
    Reason;
CREATE MATERIALIZED VIEW `${database}`.`cache_events_mv` TO `${database}`.`cache_events`
(
    `Timestamp` DateTime64(9),
    `TraceId` String,
    `SpanId` String,
    `ServiceName` LowCardinality(String),
    `Route` String,
    `Layer` String,
    `Result` String,
    `Reason` String,
    `Key` String,
    `Tags` Array(String),
    `Scope` String,
    `EntryAgeMs` Float64,
    `EntrySource` String,
    `EntrySourceTraceId` String,
    `WarmupPending` UInt8,
    `BuildId` String,
    `Region` String,
    `Instance` String,
    `EntrySourceInstance` String,
    `Function` String
)
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['next.route'] AS Route,
    SpanAttributes['cache.layer'] AS Layer,
    SpanAttributes['cache.result'] AS Result,
    SpanAttributes['cache.miss_reason'] AS Reason,
    SpanAttributes['cache.key'] AS Key,
    JSONExtract(SpanAttributes['cache.tags'], 'Array(String)') AS Tags,
    SpanAttributes['cache.scope'] AS Scope,
    toFloat64OrZero(SpanAttributes['cache.entry.age_ms']) AS EntryAgeMs,
    SpanAttributes['cache.entry.source'] AS EntrySource,
    SpanAttributes['cache.entry.source_trace_id'] AS EntrySourceTraceId,
    (SpanAttributes['nextrace.warmup.pending']) = 'true' AS WarmupPending,
    SpanAttributes['nextrace.build_id'] AS BuildId,
    SpanAttributes['nextrace.cdn.region'] AS Region,
    ResourceAttributes['service.instance.id'] AS Instance,
    SpanAttributes['cache.entry.source_instance'] AS EntrySourceInstance,
    SpanAttributes['nextrace.cache.function'] AS Function
FROM `${database}`.`${table}`
WHERE (SpanAttributes['cache.layer']) != '';
CREATE VIEW `${database}`.`deploys`
(
    `Timestamp` DateTime64(9),
    `BuildId` LowCardinality(String),
    `ServiceName` LowCardinality(String),
    `Source` String
)
AS SELECT
    Timestamp,
    BuildId,
    ServiceName,
    'deploy span' AS Source
FROM `${database}`.`lifecycle_spans`
WHERE Phase = 'deploy'
UNION ALL
SELECT
    first_request AS Timestamp,
    BuildId,
    ServiceName,
    'first request' AS Source
FROM
(
    SELECT
        ServiceName,
        BuildId,
        min(FirstSeen) AS first_request,
        min(first_request) OVER (PARTITION BY ServiceName) AS first_of_service
    FROM `${database}`.`builds`
    WHERE Source = 'nextjs'
    GROUP BY
        ServiceName,
        BuildId
)
WHERE first_request > first_of_service;
CREATE MATERIALIZED VIEW `${database}`.`lifecycle_spans_mv` TO `${database}`.`lifecycle_spans`
(
    `Timestamp` DateTime64(9),
    `TraceId` String,
    `IsRoot` UInt8,
    `ServiceName` LowCardinality(String),
    `SpanName` LowCardinality(String),
    `Phase` String,
    `Route` String,
    `BuildId` String,
    `RequestKind` String,
    `Duration` UInt64,
    `Attributes` Map(LowCardinality(String), String)
)
AS SELECT
    Timestamp,
    TraceId,
    ParentSpanId = '' AS IsRoot,
    ServiceName,
    SpanName,
    SpanAttributes['nextrace.phase'] AS Phase,
    SpanAttributes['next.route'] AS Route,
    SpanAttributes['nextrace.build_id'] AS BuildId,
    SpanAttributes['nextrace.request.kind'] AS RequestKind,
    Duration,
    mapFilter((k, v) -> startsWith(k, concat('nextrace.', Phase, '.')), SpanAttributes) AS Attributes
FROM `${database}`.`${table}`
WHERE ((SpanAttributes['nextrace.phase']) IN ('navigation', 'prefetch', 'middleware', 'warmup', 'revalidate', 'deploy')) OR (((SpanAttributes['nextrace.phase']) = 'fetch') AND ((SpanAttributes['nextrace.fetch.after']) != ''));
CREATE MATERIALIZED VIEW `${database}`.`${table}_trace_id_ts_mv` TO `${database}`.`${table}_trace_id_ts`
(
    `TraceId` String,
    `Start` DateTime64(9),
    `End` DateTime64(9)
)
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM `${database}`.`${table}`
WHERE TraceId != ''
GROUP BY TraceId;
CREATE MATERIALIZED VIEW `${database}`.`phase_time_1m_mv` TO `${database}`.`phase_time_1m`
(
    `Minute` DateTime,
    `ServiceName` LowCardinality(String),
    `Phase` String,
    `Spans` UInt64,
    `DurationNs` UInt64
)
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    multiIf((SpanAttributes['nextrace.phase']) != '', SpanAttributes['nextrace.phase'], ScopeName != 'next.js', '', (SpanAttributes['next.span_type']) = 'Middleware.execute', 'middleware', (SpanAttributes['next.span_type']) = 'NextNodeServer.findPageComponents', 'route', (SpanAttributes['next.span_type']) = 'AppRender.getBodyResult', 'render', (SpanAttributes['next.span_type']) = 'AppRender.fetch', 'fetch', '') AS Phase,
    count() AS Spans,
    sum(Duration) AS DurationNs
FROM `${database}`.`${table}`
WHERE Phase != ''
GROUP BY
    Minute,
    ServiceName,
    Phase;
CREATE MATERIALIZED VIEW `${database}`.`requests_1m_mv` TO `${database}`.`requests_1m`
(
    `Minute` DateTime,
    `ServiceName` LowCardinality(String),
    `Route` LowCardinality(String),
    `BuildId` LowCardinality(String),
    `Kind` LowCardinality(String),
    `Requests` Int64
)
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    Route,
    BuildId,
    Kind,
    sum(Sign) AS Requests
FROM `${database}`.`requests`
GROUP BY
    Minute,
    ServiceName,
    Route,
    BuildId,
    Kind;
CREATE MATERIALIZED VIEW `${database}`.`requests_mv` TO `${database}`.`requests`
(
    `Timestamp` DateTime64(9),
    `TraceId` String,
    `SpanId` String,
    `ServiceName` LowCardinality(String),
    `Route` String,
    `Kind` String,
    `KindSource` String,
    `Prefetch` String,
    `Method` String,
    `Path` String,
    `StatusCode` UInt16,
    `Duration` Nullable(UInt64),
    `TtfbMs` Nullable(Float64),
    `RenderMs` Nullable(Float64),
    `MiddlewareMs` Nullable(Float64),
    `BuildId` String,
    `Source` String,
    `ResponseBytes` Nullable(UInt64),
    `Region` String
)
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ServiceName,
    SpanAttributes['next.route'] AS Route,
    SpanAttributes['nextrace.request.kind'] AS Kind,
    if((SpanAttributes['nextrace.request.kind_source']) != '', SpanAttributes['nextrace.request.kind_source'], 'attribute') AS KindSource,
    SpanAttributes['next.prefetch'] AS Prefetch,
    SpanAttributes['http.request.method'] AS Method,
    SpanAttributes['url.path'] AS Path,
    toUInt16OrZero(SpanAttributes['http.response.status_code']) AS StatusCode,
    if(((SpanAttributes['nextrace.source']) = 'cdn') AND (Duration = 0), NULL, Duration) AS Duration,
    toFloat64OrNull(SpanAttributes['nextrace.stream.ttfb_ms']) AS TtfbMs,
    CAST(NULL, 'Nullable(Float64)') AS RenderMs,
    CAST(NULL, 'Nullable(Float64)') AS MiddlewareMs,
    SpanAttributes['nextrace.build_id'] AS BuildId,
    if((SpanAttributes['nextrace.source']) != '', SpanAttributes['nextrace.source'], 'nextrace') AS Source,
    toUInt64OrNull(SpanAttributes['http.response.body.size']) AS ResponseBytes,
    SpanAttributes['nextrace.cdn.region'] AS Region
FROM `${database}`.`${table}`
WHERE (SpanAttributes['nextrace.phase']) = 'request';
